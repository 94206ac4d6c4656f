//! Property test: no metadata ever leaks into an output.
//!
//! Each case builds a JPEG, PNG, WebP or GIF whose every metadata carrier holds its own random
//! token (EXIF GPS text and latitude, EXIF MakerNote, XMP, IPTC caption, the ICC profile's
//! description, each kind of comment, an unknown WebP chunk, and a payload appended after the
//! end of the image), runs the pipeline, and searches every output for every token.

use imgest::{Options, Output, OutputFormat, Variant, process};
use proptest::prelude::*;

use crate::fixtures::{self, contains, hex, png_chunk, riff_chunk};

/// The random payloads, one per metadata field.
#[derive(Debug, Clone)]
struct Tokens {
    /// In the EXIF GPS IFD (GPSAreaInformation).
    gps_text: String,
    /// GPSLatitude: three RATIONALs, written as-is (24 bytes, little-endian).
    gps_latitude: [u32; 6],
    /// The EXIF MakerNote.
    makernote: Vec<u8>,
    /// Inside the XMP packet.
    xmp: String,
    /// The IPTC caption (dataset 2:120).
    iptc: String,
    /// In the ICC profile's description tag.
    icc: String,
    /// Comments (JPEG COM, PNG tEXt/zTXt/iTXt, GIF comment, an unknown WebP chunk).
    comments: [String; 3],
    /// Appended after the end of the image.
    tail: Vec<u8>,
}

fn alnum() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{16,32}"
}

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 16..=32)
}

prop_compose! {
    fn tokens()(
        gps_text in alnum(),
        gps_latitude in proptest::array::uniform6(1u32..),
        makernote in random_bytes(),
        xmp in alnum(),
        iptc in alnum(),
        icc in alnum(),
        comments in [alnum(), alnum(), alnum()],
        tail in random_bytes(),
    ) -> Tokens {
        Tokens { gps_text, gps_latitude, makernote, xmp, iptc, icc, comments, tail }
    }
}

/// A byte string that must not appear in any output.
struct Needle {
    what: &'static str,
    bytes: Vec<u8>,
    /// The container stores it in pieces (GIF sub-blocks), so it may not be contiguous in the
    /// input.
    split: bool,
}

fn needle(what: &'static str, bytes: impl AsRef<[u8]>) -> Needle {
    Needle {
        what,
        bytes: bytes.as_ref().to_vec(),
        split: false,
    }
}

// ---------------------------------------------------------------------------
// Metadata payloads
// ---------------------------------------------------------------------------

enum Val {
    /// A value of at most 4 bytes, stored in the entry.
    Inline(Vec<u8>),
    /// A longer value, stored in the data area.
    Data(Vec<u8>),
    /// The offset of another IFD (by index).
    Ifd(usize),
}

/// A little-endian TIFF stream of `ifds` (IFD 0 first, chained to none), with their long values
/// in a data area after the last IFD.
fn tiff_le(ifds: &[Vec<(u16, u16, u32, Val)>]) -> Vec<u8> {
    let size = |ifd: &Vec<_>| 2 + 12 * ifd.len() + 4;
    let mut offsets = vec![8usize];
    for ifd in ifds {
        offsets.push(offsets.last().unwrap() + size(ifd));
    }
    let mut data_at = *offsets.last().unwrap();
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    let mut data = Vec::new();
    for ifd in ifds {
        out.extend_from_slice(&(ifd.len() as u16).to_le_bytes());
        for (tag, typ, count, val) in ifd {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&typ.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            match val {
                Val::Inline(v) => {
                    let mut field = [0u8; 4];
                    field[..v.len()].copy_from_slice(v);
                    out.extend_from_slice(&field);
                }
                Val::Data(v) => {
                    out.extend_from_slice(&(data_at as u32).to_le_bytes());
                    data.extend_from_slice(v);
                    data_at += v.len();
                    if v.len() % 2 == 1 {
                        data.push(0);
                        data_at += 1;
                    }
                }
                Val::Ifd(i) => out.extend_from_slice(&(offsets[*i] as u32).to_le_bytes()),
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&data);
    out
}

/// EXIF with Orientation, an Exif IFD holding a MakerNote, and a GPS IFD with a latitude and
/// a text field.
fn exif(orientation: u16, t: &Tokens) -> Vec<u8> {
    let latitude: Vec<u8> = t
        .gps_latitude
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut area = b"ASCII\0\0\0".to_vec();
    area.extend_from_slice(t.gps_text.as_bytes());
    let ifd0 = vec![
        (
            0x0112,
            3,
            1,
            Val::Inline(orientation.to_le_bytes().to_vec()),
        ),
        (0x8769, 4, 1, Val::Ifd(1)),
        (0x8825, 4, 1, Val::Ifd(2)),
    ];
    let exif_ifd = vec![(
        0x927C,
        7,
        t.makernote.len() as u32,
        Val::Data(t.makernote.clone()),
    )];
    let gps_ifd = vec![
        (0x0000, 1, 4, Val::Inline(vec![2, 3, 0, 0])),
        (0x0001, 2, 2, Val::Inline(b"N\0".to_vec())),
        (0x0002, 5, 3, Val::Data(latitude)),
        (0x001C, 7, area.len() as u32, Val::Data(area)),
    ];
    tiff_le(&[ifd0, exif_ifd, gps_ifd])
}

fn exif_needles(t: &Tokens) -> Vec<Needle> {
    let latitude: Vec<u8> = t
        .gps_latitude
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    vec![
        needle("EXIF GPSAreaInformation", &t.gps_text),
        needle("EXIF GPSLatitude", latitude),
        needle("EXIF MakerNote", &t.makernote),
    ]
}

fn xmp_packet(t: &Tokens) -> Vec<u8> {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <dc:description>{}</dc:description>\
         </rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>",
        t.xmp
    )
    .into_bytes()
}

/// IPTC-IIM: record version (2:0) and caption (2:120).
fn iptc_iim(t: &Tokens) -> Vec<u8> {
    let mut d = vec![0x1C, 2, 0, 0, 2, 0, 4];
    d.extend_from_slice(&[0x1C, 2, 120]);
    d.extend_from_slice(&(t.iptc.len() as u16).to_be_bytes());
    d.extend_from_slice(t.iptc.as_bytes());
    d
}

/// A Display P3 profile (valid, so it is applied) whose description holds the token.
fn icc_profile(t: &Tokens) -> (Vec<u8>, String) {
    let description = format!("imgest leak test {}", t.icc);
    let mut p = moxcms::ColorProfile::new_display_p3();
    p.description = Some(moxcms::ProfileText::Localizable(vec![
        moxcms::LocalizableString::new("en".into(), "US".into(), description.clone()),
    ]));
    (fixtures::icc(p), description)
}

/// The description is stored as UTF-16BE (`mluc`).
fn icc_needle(t: &Tokens) -> Needle {
    let utf16: Vec<u8> = t.icc.encode_utf16().flat_map(u16::to_be_bytes).collect();
    needle("ICC description", utf16)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &c in data {
        a = (a + u32::from(c)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream of stored (uncompressed) deflate blocks, so the payload stays readable in the
/// input: a verbatim copy of the chunk into an output would show.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(data).to_be_bytes());
    z
}

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

fn jpeg_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(payload);
}

fn jpeg_input(img: &image::RgbImage, orientation: u16, t: &Tokens) -> (Vec<u8>, Vec<Needle>) {
    let base = fixtures::jpeg(img, None, None);
    // After SOI and the JFIF APP0, if any.
    let mut at = 2;
    if base[2..4] == [0xFF, 0xE0] {
        at = 4 + usize::from(u16::from_be_bytes([base[4], base[5]]));
    }
    let mut segs = Vec::new();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif(orientation, t));
    jpeg_segment(&mut segs, 0xE1, &app1);
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(&xmp_packet(t));
    jpeg_segment(&mut segs, 0xE1, &xmp);
    let (icc, _) = icc_profile(t);
    let mut app2 = b"ICC_PROFILE\0\x01\x01".to_vec();
    app2.extend_from_slice(&icc);
    jpeg_segment(&mut segs, 0xE2, &app2);
    // Photoshop 3.0: one 8BIM resource 0x0404 (IPTC-IIM), empty name.
    let iim = iptc_iim(t);
    let mut app13 = b"Photoshop 3.0\08BIM\x04\x04\0\0".to_vec();
    app13.extend_from_slice(&(iim.len() as u32).to_be_bytes());
    app13.extend_from_slice(&iim);
    if iim.len() % 2 == 1 {
        app13.push(0);
    }
    jpeg_segment(&mut segs, 0xED, &app13);
    jpeg_segment(&mut segs, 0xFE, t.comments[0].as_bytes());

    let mut bytes = base[..at].to_vec();
    bytes.extend_from_slice(&segs);
    bytes.extend_from_slice(&base[at..]);
    bytes.extend_from_slice(&t.tail);
    let mut needles = exif_needles(t);
    needles.extend([
        needle("XMP (APP1)", &t.xmp),
        icc_needle(t),
        needle("IPTC caption (APP13)", &t.iptc),
        needle("COM segment", &t.comments[0]),
        needle("data after EOI", &t.tail),
    ]);
    (bytes, needles)
}

fn png_input(img: &image::RgbImage, orientation: u16, t: &Tokens) -> (Vec<u8>, Vec<Needle>) {
    let base = fixtures::png_rgb(img, None, None);
    // Signature (8) + IHDR (25).
    let at = 33;
    assert_eq!(&base[12..16], b"IHDR");
    let mut chunks = Vec::new();
    png_chunk(&mut chunks, b"eXIf", &exif(orientation, t));
    let (icc, _) = icc_profile(t);
    let mut iccp = b"leak test\0\0".to_vec();
    iccp.extend_from_slice(&zlib_stored(&icc));
    png_chunk(&mut chunks, b"iCCP", &iccp);
    let mut itxt_xmp = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt_xmp.extend_from_slice(&xmp_packet(t));
    png_chunk(&mut chunks, b"iTXt", &itxt_xmp);
    // ImageMagick's raw IPTC profile: hex digits in a zTXt chunk.
    let iim = iptc_iim(t);
    let raw = format!("\nIPTC profile\n{:8}\n{}\n", iim.len(), hex(&iim));
    let mut ztxt_iptc = b"Raw profile type iptc\0\0".to_vec();
    ztxt_iptc.extend_from_slice(&zlib_stored(raw.as_bytes()));
    png_chunk(&mut chunks, b"zTXt", &ztxt_iptc);
    let mut text = b"Comment\0".to_vec();
    text.extend_from_slice(t.comments[0].as_bytes());
    png_chunk(&mut chunks, b"tEXt", &text);
    let mut ztxt = b"Description\0\0".to_vec();
    ztxt.extend_from_slice(&zlib_stored(t.comments[1].as_bytes()));
    png_chunk(&mut chunks, b"zTXt", &ztxt);
    let mut itxt = b"Title\0\0\0en\0Title\0".to_vec();
    itxt.extend_from_slice(t.comments[2].as_bytes());
    png_chunk(&mut chunks, b"iTXt", &itxt);

    let mut bytes = base[..at].to_vec();
    bytes.extend_from_slice(&chunks);
    bytes.extend_from_slice(&base[at..]);
    bytes.extend_from_slice(&t.tail);
    let mut needles = exif_needles(t);
    needles.extend([
        needle("XMP (iTXt)", &t.xmp),
        icc_needle(t),
        needle("IPTC caption (raw profile, hex)", hex(t.iptc.as_bytes())),
        needle("tEXt comment", &t.comments[0]),
        needle("zTXt comment", &t.comments[1]),
        needle("iTXt comment", &t.comments[2]),
        needle("data after IEND", &t.tail),
    ]);
    (bytes, needles)
}

fn webp_input(img: &image::RgbImage, orientation: u16, t: &Tokens) -> (Vec<u8>, Vec<Needle>) {
    let base = fixtures::webp_lossless(img, None, None);
    assert_eq!(
        &base[12..16],
        b"VP8L",
        "the fixture writes a simple lossless WebP"
    );
    let vp8l_len = u32::from_le_bytes(base[16..20].try_into().unwrap()) as usize;
    let vp8l = &base[20..20 + vp8l_len];

    let mut vp8x = vec![0x20 | 0x08 | 0x04, 0, 0, 0]; // ICC, EXIF, XMP
    vp8x.extend_from_slice(&(img.width() - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(img.height() - 1).to_le_bytes()[..3]);
    let (icc, _) = icc_profile(t);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    riff_chunk(&mut body, b"ICCP", &icc);
    riff_chunk(&mut body, b"VP8L", vp8l);
    riff_chunk(&mut body, b"EXIF", &exif(orientation, t));
    riff_chunk(&mut body, b"XMP ", &xmp_packet(t));
    // An unknown chunk (readers must skip it), carrying a comment.
    riff_chunk(&mut body, b"CMNT", t.comments[0].as_bytes());
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&t.tail);
    let mut needles = exif_needles(t);
    needles.extend([
        needle("XMP chunk", &t.xmp),
        icc_needle(t),
        needle("unknown chunk", &t.comments[0]),
        needle("data after the RIFF end", &t.tail),
    ]);
    (bytes, needles)
}

/// `data` as GIF sub-blocks (at most 255 bytes each) and the terminator.
fn gif_sub_blocks(out: &mut Vec<u8>, data: &[u8]) {
    for block in data.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.push(0);
}

fn gif_input(img: &image::RgbaImage, t: &Tokens) -> (Vec<u8>, Vec<Needle>) {
    let base = fixtures::gif(img);
    let packed = base[10];
    let gct = if packed & 0x80 != 0 {
        3usize << ((packed & 7) + 1)
    } else {
        0
    };
    let at = 13 + gct;
    let mut ext = Vec::new();
    // Comment extension.
    ext.extend_from_slice(&[0x21, 0xFE]);
    gif_sub_blocks(&mut ext, t.comments[0].as_bytes());
    // XMP application extension: the packet as raw bytes, then the 258-byte "magic trailer"
    // that ends the sub-block chain whichever packet byte a reader takes for a length.
    ext.extend_from_slice(b"\x21\xFF\x0BXMP DataXMP");
    ext.extend_from_slice(&xmp_packet(t));
    ext.push(0x01);
    ext.extend((0..=255u8).rev());
    ext.push(0x00);
    // ICC application extension.
    let (icc, _) = icc_profile(t);
    ext.extend_from_slice(b"\x21\xFF\x0BICCRGBG1012");
    gif_sub_blocks(&mut ext, &icc);

    let mut bytes = base[..at].to_vec();
    bytes.extend_from_slice(&ext);
    bytes.extend_from_slice(&base[at..]);
    assert_eq!(bytes.last(), Some(&0x3B));
    bytes.extend_from_slice(&t.tail);
    let needles = vec![
        needle("comment extension", &t.comments[0]),
        needle("XMP application extension", &t.xmp),
        // In 255-byte sub-blocks; `icc_description` shows the profile was read.
        Needle {
            split: true,
            ..icc_needle(t)
        },
        needle("data after the trailer", &t.tail),
    ];
    (bytes, needles)
}

// ---------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------

/// The defaults (lossy WebP), and one variant of every other output kind (AVIF included).
fn option_sets() -> [Options; 2] {
    [
        Options::default(),
        Options::default().with_variants(vec![
            Variant::original("webp_lossless").with_lossless(true),
            Variant::original("jpeg").with_format(OutputFormat::Jpeg),
            Variant::fit("png", 24).with_format(OutputFormat::Png),
            Variant::fit("avif", 24).with_format(OutputFormat::Avif),
        ]),
    ]
}

/// Runs every option set on `bytes`; fails if any output carries any needle. Returns the
/// output of the default options.
fn assert_no_leak(bytes: &[u8], needles: &[Needle]) -> Result<Output, TestCaseError> {
    // The needles really are in the input: the search below looks for something that exists.
    for n in needles.iter().filter(|n| !n.split) {
        prop_assert!(contains(bytes, &n.bytes), "{} is not in the input", n.what);
    }
    let mut first = None;
    for options in option_sets() {
        let out = process(bytes, &options);
        prop_assert!(out.is_ok(), "processing failed: {:?}", out.err());
        let out = out.unwrap();
        prop_assert_eq!(out.variants.len(), options.variants.len());
        for v in &out.variants {
            prop_assert!(!v.bytes.is_empty(), "variant {} is empty", v.name);
            for n in needles {
                prop_assert!(
                    !contains(&v.bytes, &n.bytes),
                    "{} leaked into variant {} ({:?}, {} bytes)",
                    n.what,
                    v.name,
                    v.format,
                    v.bytes.len()
                );
            }
            if v.format == OutputFormat::Webp
                && let Err(e) = crate::webp_chunks::assert_no_metadata(&v.bytes)
            {
                return Err(TestCaseError::fail(format!("variant {}: {e}", v.name)));
            }
            if v.format == OutputFormat::Avif {
                // No metadata item (`Exif`, `mime` for XMP) and no ICC `colr` of its own.
                for item in [&b"Exif"[..], b"mime", b"prof", b"rICC"] {
                    prop_assert!(
                        !contains(&v.bytes, item),
                        "variant {} holds a {:?} box or item",
                        v.name,
                        String::from_utf8_lossy(item)
                    );
                }
            }
        }
        first.get_or_insert(out);
    }
    Ok(first.unwrap())
}

/// The report says what the input held: its orientation (where the format has one), the
/// appended tail, and the embedded profile, which was applied.
fn check_source(
    s: &imgest::SourceReport,
    orientation: Option<u16>,
    t: &Tokens,
) -> Result<(), TestCaseError> {
    if let Some(o) = orientation {
        prop_assert_eq!(s.orientation, o as u8);
    }
    prop_assert_eq!(s.trailing_bytes, t.tail.len() as u64);
    prop_assert_eq!(s.icc_description.clone(), Some(icc_profile(t).1));
    prop_assert!(s.color_converted);
    Ok(())
}

fn dims() -> impl Strategy<Value = (u32, u32)> {
    (8u32..=48, 8u32..=48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn jpeg_metadata_never_leaks(t in tokens(), (w, h) in dims(), o in 1u16..=8) {
        let (bytes, needles) = jpeg_input(&fixtures::gradient(w, h), o, &t);
        let out = assert_no_leak(&bytes, &needles)?;
        let s = &out.source;
        let m = s.metadata;
        prop_assert!(m.exif && m.gps && m.makernote && m.xmp && m.iptc && m.icc && m.comment,
            "{:?}", m);
        check_source(s, Some(o), &t)?;
    }

    #[test]
    fn png_metadata_never_leaks(t in tokens(), (w, h) in dims(), o in 1u16..=8) {
        let (bytes, needles) = png_input(&fixtures::gradient(w, h), o, &t);
        let out = assert_no_leak(&bytes, &needles)?;
        let s = &out.source;
        let m = s.metadata;
        prop_assert!(m.exif && m.gps && m.makernote && m.xmp && m.iptc && m.icc && m.comment,
            "{:?}", m);
        check_source(s, Some(o), &t)?;
    }

    #[test]
    fn webp_metadata_never_leaks(t in tokens(), (w, h) in dims(), o in 1u16..=8) {
        let (bytes, needles) = webp_input(&fixtures::gradient(w, h), o, &t);
        let out = assert_no_leak(&bytes, &needles)?;
        let s = &out.source;
        let m = s.metadata;
        prop_assert!(m.exif && m.gps && m.makernote && m.xmp && m.icc, "{:?}", m);
        check_source(s, Some(o), &t)?;
    }

    #[test]
    fn gif_metadata_never_leaks(t in tokens(), (w, h) in dims()) {
        let img = image::DynamicImage::ImageRgb8(fixtures::gradient(w, h)).to_rgba8();
        let (bytes, needles) = gif_input(&img, &t);
        let out = assert_no_leak(&bytes, &needles)?;
        let s = &out.source;
        let m = s.metadata;
        prop_assert!(m.xmp && m.icc && m.comment, "{:?}", m);
        check_source(s, None, &t)?;
    }
}
