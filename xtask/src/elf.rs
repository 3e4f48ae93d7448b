//! Reads an ELF executable's linkage: static binaries have no program interpreter and need
//! no shared libraries.

use std::path::Path;

use anyhow::Context;
use object::elf;
use object::read::elf::{Dyn, ElfFile64, ProgramHeader, SectionHeader};

/// How an executable is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage {
    /// The dynamic loader it asks for (`PT_INTERP`), if any.
    pub interpreter: Option<String>,
    /// Shared libraries it needs (`DT_NEEDED`), as raw string-table offsets resolved to names.
    pub needed: Vec<String>,
}

impl Linkage {
    /// No loader and no shared libraries: runs on any Linux of the same architecture.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

/// Reads the linkage of the 64-bit ELF file at `path`.
pub fn linkage(path: &Path) -> anyhow::Result<Linkage> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = ElfFile64::<object::Endianness>::parse(&*data)
        .with_context(|| format!("{} is not a 64-bit ELF file", path.display()))?;
    let endian = file.endian();
    let mut interpreter = None;
    let mut needed = Vec::new();
    for header in file.elf_program_headers() {
        if header.p_type(endian) == elf::PT_INTERP {
            let bytes = header
                .data(endian, &*data)
                .map_err(|()| anyhow::anyhow!("bad PT_INTERP in {}", path.display()))?;
            let text = String::from_utf8_lossy(bytes);
            interpreter = Some(text.trim_end_matches('\0').to_string());
        }
    }
    let sections = file.elf_section_table();
    for section in sections.iter() {
        let Some((entries, link)) = section
            .dynamic(endian, &*data)
            .context("bad dynamic section")?
        else {
            continue;
        };
        let strings = sections
            .strings(endian, &*data, link)
            .context("bad dynamic string table")?;
        for entry in entries {
            if entry.tag32(endian) == Some(elf::DT_NEEDED) {
                let name = entry
                    .string(endian, strings)
                    .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                    .unwrap_or_else(|_| "<unreadable>".to_string());
                needed.push(name);
            }
        }
    }
    Ok(Linkage {
        interpreter,
        needed,
    })
}
