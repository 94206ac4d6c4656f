//! Our own output must decode: an arbitrary small RGBA image (size from the first bytes, pixels
//! from the rest) goes through the pipeline as a PNG; every WebP variant decodes to its stated
//! size and carries only image chunks (no EXIF, XMP or ICC).
#![no_main]

use imgest::{Options, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (w, h) = (u32::from(data[0] % 64) + 1, u32::from(data[1] % 64) + 1);
    let pixels: Vec<u8> = data[2..]
        .iter()
        .copied()
        .cycle()
        .take((w * h * 4) as usize)
        .collect();
    if pixels.len() < (w * h * 4) as usize {
        return;
    }
    let img = image::RgbaImage::from_raw(w, h, pixels).expect("sized buffer");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png encodes");
    let options = Options::default().with_variants(vec![
        Variant::fit("a", 16),
        Variant::original("b"),
        Variant::original("c").with_lossless(true),
    ]);
    let out = imgest::process(&png, &options).expect("our own PNG is accepted");
    for v in &out.variants {
        let back = image::load_from_memory(&v.bytes).expect("our WebP decodes");
        assert_eq!((back.width(), back.height()), (v.width, v.height));
        let mut pos = 12;
        while pos + 8 <= v.bytes.len() {
            let fourcc = &v.bytes[pos..pos + 4];
            assert!(
                matches!(fourcc, b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH"),
                "unexpected chunk {fourcc:?}"
            );
            let size = u32::from_le_bytes(v.bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
            pos += 8 + size + (size & 1);
        }
    }
});
