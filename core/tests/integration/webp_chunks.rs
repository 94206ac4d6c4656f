//! A tiny RIFF/WebP chunk walker used to prove outputs carry no metadata.

/// The chunk FourCCs of a WebP file, or an error if the RIFF structure is broken or data
/// follows the RIFF end.
pub fn chunks(bytes: &[u8]) -> Result<Vec<[u8; 4]>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err("not a RIFF/WEBP file".into());
    }
    let riff_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize + 8;
    if riff_len != bytes.len() {
        return Err(format!(
            "RIFF size {riff_len} but file is {} bytes",
            bytes.len()
        ));
    }
    let mut out = Vec::new();
    let mut i = 12;
    while i < bytes.len() {
        let head = bytes.get(i..i + 8).ok_or("truncated chunk header")?;
        let fourcc: [u8; 4] = head[..4].try_into().unwrap();
        let len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        if fourcc == *b"VP8X" {
            let flags = *bytes.get(i + 8).ok_or("short VP8X")?;
            // ICC (0x20), EXIF (0x08), XMP (0x04), animation (0x02) must be off.
            if flags & 0x2E != 0 {
                return Err(format!(
                    "VP8X flags {flags:#04x} announce metadata/animation"
                ));
            }
        }
        out.push(fourcc);
        i += 8 + len + (len & 1);
    }
    if i != bytes.len() {
        return Err("chunk overruns the file".into());
    }
    Ok(out)
}

/// Err when a WebP carries any chunk other than image data.
pub fn assert_no_metadata(bytes: &[u8]) -> Result<(), String> {
    for c in chunks(bytes)? {
        match &c {
            b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH" => {}
            other => {
                return Err(format!(
                    "unexpected chunk {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    Ok(())
}
