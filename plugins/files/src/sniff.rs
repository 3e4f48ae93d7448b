//! A file's type from its first bytes. Only types that are safe to hand a browser come out:
//! never HTML, SVG or XML, which a browser could run as a page; text is `text/plain`.

/// The media type of a file starting with `head` (its first 512 bytes or fewer).
pub(crate) fn sniff(head: &[u8]) -> &'static str {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"OggS", "audio/ogg"),
        (b"fLaC", "audio/flac"),
        (b"ID3", "audio/mpeg"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
    ];
    for (signature, media_type) in SIGNATURES {
        if head.starts_with(signature) {
            return media_type;
        }
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" {
        match &head[8..12] {
            b"WEBP" => return "image/webp",
            b"WAVE" => return "audio/wav",
            _ => {}
        }
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return if &head[8..12] == b"M4A " {
            "audio/mp4"
        } else {
            "video/mp4"
        };
    }
    if is_text(head) {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// UTF-8 (a character cut at the end of `head` allowed) without NUL or other control bytes
/// than whitespace.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && head.len() - error.valid_up_to() < 4,
    };
    valid
        && !head
            .iter()
            .any(|&byte| byte < 0x20 && !matches!(byte, b'\n' | b'\r' | b'\t' | 0x0c))
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn types_come_from_the_bytes_and_markup_is_only_text() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), "video/mp4");
        assert_eq!(sniff(b"hello, world\n"), "text/plain; charset=utf-8");
        assert_eq!(sniff("grüße".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(
            sniff(&"é".as_bytes()[..1]),
            "text/plain; charset=utf-8",
            "cut mid-character"
        );
        for markup in [
            &b"<!doctype html><script>alert(1)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"<?xml version=\"1.0\"?><x/>",
        ] {
            assert_eq!(sniff(markup), "text/plain; charset=utf-8");
        }
        assert_eq!(sniff(b"\0\x01\x02binary"), "application/octet-stream");
    }
}
