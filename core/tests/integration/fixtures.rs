//! Fixtures generated in code, so the tests stand alone in any checkout, and the location of
//! the shared corpus. Also compiled into `tests/bombs.rs` (`#[path]`).

use std::path::PathBuf;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};

/// A w×h gradient with a distinct colour in each corner, so orientation mistakes show.
pub fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let fx = x * 255 / w.max(2).saturating_sub(1).max(1);
        let fy = y * 255 / h.max(2).saturating_sub(1).max(1);
        image::Rgb([fx.min(255) as u8, fy.min(255) as u8, 64])
    })
}

/// A little-endian TIFF/EXIF block with Orientation, and optionally a GPS IFD with a latitude.
pub fn exif_block(orientation: u16, gps: bool) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    let entries: u16 = if gps { 2 } else { 1 };
    t.extend_from_slice(&entries.to_le_bytes());
    // Orientation (0x0112), SHORT, 1.
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&u32::from(orientation).to_le_bytes());
    if gps {
        // GPSInfo (0x8825), LONG, 1, offset of the GPS IFD.
        let gps_ifd = 8 + 2 + 12 * u32::from(entries) + 4;
        t.extend_from_slice(&0x8825u16.to_le_bytes());
        t.extend_from_slice(&4u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&gps_ifd.to_le_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    if gps {
        // GPS IFD: GPSLatitudeRef = "N".
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x0001u16.to_le_bytes());
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&2u32.to_le_bytes());
        t.extend_from_slice(b"N\0\0\0");
        t.extend_from_slice(&0u32.to_le_bytes());
    }
    t
}

pub fn jpeg(img: &RgbImage, exif: Option<Vec<u8>>, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut out, 95);
    if let Some(e) = exif {
        enc.set_exif_metadata(e).unwrap();
    }
    if let Some(i) = icc {
        enc.set_icc_profile(i).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
    .unwrap();
    out
}

pub fn png_rgba(img: &RgbaImage, exif: Option<Vec<u8>>, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = PngEncoder::new(&mut out);
    if let Some(e) = exif {
        enc.set_exif_metadata(e).unwrap();
    }
    if let Some(i) = icc {
        enc.set_icc_profile(i).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgba8,
    )
    .unwrap();
    out
}

pub fn png_rgb(img: &RgbImage, exif: Option<Vec<u8>>, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = PngEncoder::new(&mut out);
    if let Some(e) = exif {
        enc.set_exif_metadata(e).unwrap();
    }
    if let Some(i) = icc {
        enc.set_icc_profile(i).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
    .unwrap();
    out
}

pub fn webp_lossless(img: &RgbImage, exif: Option<Vec<u8>>, icc: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = WebPEncoder::new_lossless(&mut out);
    if let Some(e) = exif {
        enc.set_exif_metadata(e).unwrap();
    }
    if let Some(i) = icc {
        enc.set_icc_profile(i).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
    .unwrap();
    out
}

pub fn gif(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut out)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgba8,
        )
        .unwrap();
    out
}

/// A GIF of one frame: a logical screen of `screen` pixels (with a two-colour global table when
/// `table`), one image descriptor of `frame` pixels at (0, 0), one LZW sub-block (a clear code
/// and a pixel) and the trailer. The sizes are whatever the test needs them to claim.
pub fn gif_one_frame(screen: (u16, u16), frame: (u16, u16), table: bool) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&screen.0.to_le_bytes());
    g.extend_from_slice(&screen.1.to_le_bytes());
    if table {
        g.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
        g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    } else {
        g.extend_from_slice(&[0x00, 0, 0]); // no global colour table
    }
    g.push(0x2C); // image descriptor
    g.extend_from_slice(&0u16.to_le_bytes());
    g.extend_from_slice(&0u16.to_le_bytes());
    g.extend_from_slice(&frame.0.to_le_bytes());
    g.extend_from_slice(&frame.1.to_le_bytes());
    g.push(0);
    g.extend_from_slice(&[0x02, 0x02, 0x4C, 0x01, 0x00, 0x3B]);
    g
}

/// A 29-byte GIF whose header declares a 65535×65535 canvas and frame (4.3 gigapixels).
pub fn gif_bomb() -> Vec<u8> {
    gif_one_frame((65535, 65535), (65535, 65535), false)
}

/// A PNG header (signature + IHDR with a valid CRC) declaring `w`×`h`, and nothing else.
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut p, b"IHDR", &ihdr);
    p
}

/// Appends a PNG chunk (length, type, data, CRC) to `out`.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Appends a RIFF chunk (fourcc, little-endian length, data, pad byte) to `out`.
pub fn riff_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// `jpeg` (one scan) with its scan (SOS up to EOI) repeated `n` times.
pub fn with_scans(jpeg: &[u8], n: usize) -> Vec<u8> {
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let eoi = jpeg.len() - 2;
    assert_eq!(&jpeg[eoi..], [0xFF, 0xD9]);
    let mut out = jpeg[..sos].to_vec();
    for _ in 0..n {
        out.extend_from_slice(&jpeg[sos..eoi]);
    }
    out.extend_from_slice(&jpeg[eoi..]);
    out
}

/// Whether `needle` occurs in `hay` (an empty needle never does).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// An ICC profile built in code.
pub fn icc(profile: moxcms::ColorProfile) -> Vec<u8> {
    profile.encode().unwrap()
}

/// The shared corpus of real-world images, which lives outside the repository: `IMGEST_CORPUS`,
/// or `../shared/corpus` next to the workspace. When it is missing this prints why and returns
/// `None` (the test passes), unless `IMGEST_REQUIRE_CORPUS=1` (set by `.ci/run`), which makes it
/// mandatory.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("IMGEST_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    let required = std::env::var("IMGEST_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "IMGEST_REQUIRE_CORPUS=1 but no corpus at {} (set IMGEST_CORPUS)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: corpus tests need {} (or IMGEST_CORPUS); it is not in this checkout",
        dir.join("EXPECTED.json").display()
    );
    None
}

/// A w×h image of noise with a gentle gradient under it: the costliest pixels to decode,
/// resample and encode, as a camera photo at high ISO is.
pub fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        let g = ((x + y) * 255 / (w + h)) as u8;
        image::Rgb([a / 2 + g / 2, b / 2 + g / 2, c / 2 + g / 2])
    })
}

/// A lossy WebP of `img` (quality 85), through imgest itself (`image` writes lossless only).
pub fn webp_lossy(img: &RgbImage) -> Vec<u8> {
    let options = imgest::Options::default()
        .with_variants(vec![imgest::Variant::original("webp")])
        .with_dominant_color(false)
        .with_placeholder(false);
    let png = png_rgb(img, None, None);
    let mut out = imgest::process(&png, &options).unwrap();
    out.variants.remove(0).bytes
}

/// What an AVIF fixture declares besides its AV1 data ([`avif`]).
#[derive(Default, Clone)]
pub struct AvifBoxes {
    /// The `ispe` size (the AV1 frame's own size otherwise).
    pub ispe: Option<(u32, u32)>,
    /// `irot` angle (× 90° anticlockwise).
    pub irot: Option<u8>,
    /// `imir` axis.
    pub imir: Option<u8>,
    /// `colr` `nclx`: primaries, transfer, matrix, full range.
    pub nclx: Option<(u16, u16, u16, bool)>,
    /// `colr` `prof` ICC profile.
    pub icc: Option<Vec<u8>>,
    /// An `Exif` item (a TIFF stream, after the 4-byte offset field).
    pub exif: Option<Vec<u8>>,
    /// An XMP (`mime`, `application/rdf+xml`) item.
    pub xmp: Option<Vec<u8>>,
}

fn bmff(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    b.extend_from_slice(body);
    bmff(kind, &b)
}

/// The AV1 data of the colour and (if any) alpha image of an AVIF file.
pub fn av1_payloads(avif: &[u8]) -> (Vec<u8>, Option<Vec<u8>>, (u32, u32)) {
    let info = imgest::container::read(avif, imgest::container::Kind::Avif, 1).unwrap();
    let a = info.avif.unwrap();
    let cat = |ranges: &[std::ops::Range<usize>]| {
        ranges
            .iter()
            .flat_map(|r| avif[r.clone()].to_vec())
            .collect::<Vec<u8>>()
    };
    (
        cat(&a.color),
        a.alpha.as_deref().map(cat),
        (info.width, info.height),
    )
}

/// An AVIF still image around AV1 data (`color`, optional `alpha` plane) with the given boxes:
/// items 1 (colour), 2 (alpha), 3 (Exif), 4 (XMP), all located in one `mdat`.
pub fn avif(color: &[u8], alpha: Option<&[u8]>, size: (u32, u32), boxes: &AvifBoxes) -> Vec<u8> {
    let ftyp = bmff(b"ftyp", b"avif\0\0\0\0avifmif1miaf");
    let mut items: Vec<(u16, &[u8; 4], Vec<u8>)> = vec![(1, b"av01", color.to_vec())];
    if let Some(a) = alpha {
        items.push((2, b"av01", a.to_vec()));
    }
    if let Some(e) = &boxes.exif {
        let mut data = 0u32.to_be_bytes().to_vec();
        data.extend_from_slice(e);
        items.push((3, b"Exif", data));
    }
    if let Some(x) = &boxes.xmp {
        items.push((4, b"mime", x.clone()));
    }
    let meta = |base: u32| {
        let mut iloc = vec![0x44, 0x00]; // offset and length: 4 bytes; no base offset
        iloc.extend_from_slice(&(items.len() as u16).to_be_bytes());
        let mut at = base;
        for (id, _, data) in &items {
            iloc.extend_from_slice(&id.to_be_bytes());
            iloc.extend_from_slice(&[0, 0, 0, 1]); // data reference index, one extent
            iloc.extend_from_slice(&at.to_be_bytes());
            iloc.extend_from_slice(&(data.len() as u32).to_be_bytes());
            at += data.len() as u32;
        }
        let mut iinf = (items.len() as u16).to_be_bytes().to_vec();
        for (id, kind, _) in &items {
            let mut e = id.to_be_bytes().to_vec();
            e.extend_from_slice(&[0, 0]);
            e.extend_from_slice(*kind);
            e.push(0); // name
            if *kind == b"mime" {
                e.extend_from_slice(b"application/rdf+xml\0");
            }
            iinf.extend(full_box(b"infe", 2, 0, &e));
        }
        let mut iref = Vec::new();
        if alpha.is_some() {
            iref.extend(bmff(b"auxl", &[0, 2, 0, 1, 0, 1]));
        }
        for id in [3u16, 4] {
            if items.iter().any(|i| i.0 == id) {
                let mut r = id.to_be_bytes().to_vec();
                r.extend_from_slice(&[0, 1, 0, 1]);
                iref.extend(bmff(b"cdsc", &r));
            }
        }
        let (w, h) = boxes.ispe.unwrap_or(size);
        let mut wh = w.to_be_bytes().to_vec();
        wh.extend_from_slice(&h.to_be_bytes());
        let mut ipco = Vec::new();
        let mut color_props = Vec::new();
        let mut n = 0u8;
        let mut add = |ipco: &mut Vec<u8>, props: &mut Vec<u8>, b: Vec<u8>| {
            ipco.extend(b);
            n += 1;
            props.push(n);
        };
        add(&mut ipco, &mut color_props, full_box(b"ispe", 0, 0, &wh));
        if let Some((p, t, m, f)) = boxes.nclx {
            let mut c = b"nclx".to_vec();
            for v in [p, t, m] {
                c.extend_from_slice(&v.to_be_bytes());
            }
            c.push(if f { 0x80 } else { 0 });
            add(&mut ipco, &mut color_props, bmff(b"colr", &c));
        }
        if let Some(icc) = &boxes.icc {
            let mut c = b"prof".to_vec();
            c.extend_from_slice(icc);
            add(&mut ipco, &mut color_props, bmff(b"colr", &c));
        }
        if let Some(a) = boxes.irot {
            add(&mut ipco, &mut color_props, bmff(b"irot", &[a]));
        }
        if let Some(a) = boxes.imir {
            add(&mut ipco, &mut color_props, bmff(b"imir", &[a]));
        }
        let mut alpha_props = Vec::new();
        if alpha.is_some() {
            add(&mut ipco, &mut alpha_props, full_box(b"ispe", 0, 0, &wh));
            add(
                &mut ipco,
                &mut alpha_props,
                full_box(
                    b"auxC",
                    0,
                    0,
                    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0",
                ),
            );
        }
        let mut ipma = Vec::new();
        let entries: Vec<(u16, &Vec<u8>)> = [(1, &color_props), (2, &alpha_props)]
            .into_iter()
            .filter(|(_, p)| !p.is_empty())
            .collect();
        ipma.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (id, props) in entries {
            ipma.extend_from_slice(&id.to_be_bytes());
            ipma.push(props.len() as u8);
            ipma.extend(props.iter().map(|p| p | 0x80));
        }
        let mut iprp = bmff(b"ipco", &ipco);
        iprp.extend(full_box(b"ipma", 0, 0, &ipma));
        let mut body = full_box(b"hdlr", 0, 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
        body.extend(full_box(b"pitm", 0, 0, &[0, 1]));
        body.extend(full_box(b"iloc", 0, 0, &iloc));
        body.extend(full_box(b"iinf", 0, 0, &iinf));
        if !iref.is_empty() {
            body.extend(full_box(b"iref", 0, 0, &iref));
        }
        body.extend(bmff(b"iprp", &iprp));
        full_box(b"meta", 0, 0, &body)
    };
    let len = meta(0).len();
    let mut out = ftyp.clone();
    out.extend(meta((ftyp.len() + len + 8) as u32));
    let data: Vec<u8> = items.iter().flat_map(|i| i.2.clone()).collect();
    out.extend(bmff(b"mdat", &data));
    out
}

/// An AVIF image sequence without a primary item: one `pict` track whose first sample is
/// `first` (then `more` samples of garbage the decoder never reads), `size` in its sample entry.
pub fn avifs_sequence(first: &[u8], size: (u32, u32), more: u32) -> Vec<u8> {
    let ftyp = bmff(b"ftyp", b"avis\0\0\0\0avismsf1");
    let moov = |offset: u32| {
        let mut entry = vec![0; 24];
        entry.extend_from_slice(&(size.0 as u16).to_be_bytes());
        entry.extend_from_slice(&(size.1 as u16).to_be_bytes());
        entry.extend_from_slice(&[0; 50]);
        let mut stsd = 1u32.to_be_bytes().to_vec();
        stsd.extend(bmff(b"av01", &entry));
        let mut stbl = full_box(b"stsd", 0, 0, &stsd);
        let mut stsz = 0u32.to_be_bytes().to_vec();
        stsz.extend_from_slice(&(1 + more).to_be_bytes());
        stsz.extend_from_slice(&(first.len() as u32).to_be_bytes());
        for _ in 0..more {
            stsz.extend_from_slice(&4u32.to_be_bytes());
        }
        stbl.extend(full_box(b"stsz", 0, 0, &stsz));
        let mut stco = 1u32.to_be_bytes().to_vec();
        stco.extend_from_slice(&offset.to_be_bytes());
        stbl.extend(full_box(b"stco", 0, 0, &stco));
        let mut mdia = full_box(b"hdlr", 0, 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
        mdia.extend(bmff(b"minf", &bmff(b"stbl", &stbl)));
        bmff(b"moov", &bmff(b"trak", &bmff(b"mdia", &mdia)))
    };
    let offset = ftyp.len() + moov(0).len() + 8;
    let mut out = ftyp;
    out.extend(moov(offset as u32));
    let mut data = first.to_vec();
    data.extend(std::iter::repeat_n(0xEE, 4 * more as usize));
    out.extend(bmff(b"mdat", &data));
    out
}
