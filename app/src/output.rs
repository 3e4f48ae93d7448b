//! How commands print: through one buffer for long listings, and as pretty JSON for every
//! `--json`.

use std::io::Write;

/// Runs `write` on a buffered standard output and flushes it: a listing of a thousand plugins
/// is ten thousand lines, which unbuffered (stdout is line-buffered) cost a system call each.
pub(crate) fn buffered(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// `value` as pretty JSON and a newline: what every `--json` prints.
pub(crate) fn write_json<T: plexichat::serde::Serialize + ?Sized>(
    out: &mut impl Write,
    value: &T,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
