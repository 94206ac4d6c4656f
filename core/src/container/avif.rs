//! AVIF: the ISO-BMFF boxes of a HEIF image file (`ftyp`, `meta` with its items and their
//! properties) and of an image sequence (`moov`, the first frame of the first picture track).
//!
//! The walk finds the primary item (`pitm`), which must be an `av01` image, its size (`ispe`),
//! orientation (`irot`, `imir`), bit depth (`pixi`), colour (`colr`: `nclx` and/or an ICC
//! profile), its alpha plane (an `av01` item with an `auxl` reference to it and an `auxC`
//! alpha URN, `prem` when premultiplied), and the metadata items (`Exif`, XMP as a `mime` item
//! of type `application/rdf+xml`). Where the AV1 data of each image lies is resolved here
//! (`iloc` extents in the file or in `idat`), so the decoder only reads ranges this walk checked
//! to lie inside the input. A `.avifs` sequence without a primary item is shown by its first
//! frame (first chunk offset and first sample size of the first `pict`/`vide` track).

use std::ops::Range;

use super::*;

/// One box: its type and the range of its payload (after the size/type header).
struct Bx {
    typ: [u8; 4],
    body: Range<usize>,
}

/// The boxes inside `range` of `b`, in order. A box that runs past `range` ends the walk with
/// an error (truncated when `range` ends at the end of the input).
fn boxes(b: &[u8], range: Range<usize>) -> impl Iterator<Item = Result<Bx, HeaderError>> + '_ {
    let mut pos = range.start;
    let end = range.end.min(b.len());
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= end {
            return None;
        }
        let at_end = end == b.len();
        let mut cut = |what| {
            done = true;
            Some(Err(if at_end {
                HeaderError::Truncated(what)
            } else {
                HeaderError::Malformed(what)
            }))
        };
        let (Some(size), Some(typ)) = (be32(b, pos), arr::<4>(b, pos + 4)) else {
            return cut("ISO-BMFF box header");
        };
        if pos + 8 > end {
            return cut("ISO-BMFF box header");
        }
        let (head, size) = match size {
            0 => (8, (end - pos) as u64),
            1 => match be64(b, pos + 8) {
                Some(large) if pos + 16 <= end => (16, large),
                _ => return cut("ISO-BMFF box header"),
            },
            s => (8, u64::from(s)),
        };
        let Some(box_end) = usize::try_from(size)
            .ok()
            .filter(|&s| s >= head)
            .and_then(|s| pos.checked_add(s))
        else {
            return cut("ISO-BMFF box size");
        };
        if box_end > end {
            return cut("ISO-BMFF box");
        }
        let bx = Bx {
            typ,
            body: pos + head..box_end,
        };
        pos = box_end;
        Some(Ok(bx))
    })
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    arr(b, at).map(u64::from_be_bytes)
}

/// A big-endian unsigned integer of `n` bytes (0, 4 or 8; 0 reads as 0).
fn uint(b: &[u8], at: usize, n: usize) -> Option<u64> {
    match n {
        0 => Some(0),
        2 => be16(b, at).map(u64::from),
        4 => be32(b, at).map(u64::from),
        8 => be64(b, at),
        _ => None,
    }
}

/// A 16-bit (`wide` false) or 32-bit big-endian field at `at` (item ids and counts, whose width
/// a box's version picks), and its width in bytes.
fn field(b: &[u8], at: usize, wide: bool) -> Option<(u32, usize)> {
    if wide {
        be32(b, at).map(|v| (v, 4))
    } else {
        be16(b, at).map(|v| (u32::from(v), 2))
    }
}

/// A full box's version and flags, and the payload after them.
fn full(b: &[u8], body: &Range<usize>) -> Option<(u8, u32, Range<usize>)> {
    let vf = be32(b, body.start)?;
    (body.start + 4 <= body.end)
        .then(|| ((vf >> 24) as u8, vf & 0xFF_FFFF, body.start + 4..body.end))
}

/// A NUL-terminated string starting at `at`, and the position after it.
fn cstr(b: &[u8], at: usize, end: usize) -> Option<(&[u8], usize)> {
    let s = b.get(at..end)?;
    let n = s.iter().position(|&c| c == 0)?;
    Some((&s[..n], at + n + 1))
}

const ALPHA_URNS: [&[u8]; 2] = [
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
    b"urn:mpeg:hevc:2015:auxid:1",
];

#[derive(Default)]
struct Item {
    typ: [u8; 4],
    xmp: bool,
    /// `(construction_method, extents)`; offsets relative to the file (0) or `idat` (1).
    loc: Option<(u16, Vec<(u64, u64)>)>,
    props: Vec<u16>,
}

#[derive(Clone)]
enum Prop {
    Ispe(u32, u32),
    Irot(u8),
    Imir(u8),
    Pixi(u8),
    Nclx(Nclx),
    Icc(Range<usize>),
    Alpha,
    Other,
}

#[derive(Default)]
struct Meta {
    pict: bool,
    primary: Option<u32>,
    items: Vec<(u32, Item)>,
    /// `(type, from, to)` references.
    refs: Vec<([u8; 4], u32, u32)>,
    props: Vec<Prop>,
    idat: Option<Range<usize>>,
}

impl Meta {
    fn item(&mut self, id: u32) -> &mut Item {
        match self.items.iter().position(|(i, _)| *i == id) {
            Some(at) => &mut self.items[at].1,
            None => {
                self.items.push((id, Item::default()));
                &mut self.items.last_mut().expect("just pushed").1
            }
        }
    }

    fn get(&self, id: u32) -> Option<&Item> {
        self.items.iter().find(|(i, _)| *i == id).map(|(_, it)| it)
    }

    fn props_of(&self, id: u32) -> impl Iterator<Item = &Prop> {
        self.get(id)
            .into_iter()
            .flat_map(|it| it.props.iter())
            .filter_map(|&p| self.props.get(usize::from(p).checked_sub(1)?))
    }

    /// The file ranges of an item's data (extents in `idat` resolved), each inside the input.
    fn ranges(&self, b: &[u8], id: u32) -> Result<Vec<Range<usize>>, HeaderError> {
        let Some((method, extents)) = self.get(id).and_then(|it| it.loc.as_ref()) else {
            return Err(HeaderError::Malformed("AVIF item without a location"));
        };
        let base = match method {
            0 => 0..b.len(),
            1 => self
                .idat
                .clone()
                .ok_or(HeaderError::Malformed("AVIF item in a missing idat"))?,
            _ => return Err(HeaderError::Malformed("AVIF item construction method")),
        };
        let mut out = Vec::with_capacity(extents.len());
        for &(offset, len) in extents {
            let start = usize::try_from(offset)
                .ok()
                .and_then(|o| base.start.checked_add(o));
            let Some(start) = start.filter(|&s| s <= base.end) else {
                return Err(HeaderError::Truncated("AVIF item data"));
            };
            let end = if len == 0 {
                base.end
            } else {
                match usize::try_from(len).ok().and_then(|l| start.checked_add(l)) {
                    Some(e) if e <= base.end => e,
                    _ => return Err(HeaderError::Truncated("AVIF item data")),
                }
            };
            out.push(start..end);
        }
        if out.iter().all(|r| r.is_empty()) {
            return Err(HeaderError::Malformed("AVIF item without data"));
        }
        Ok(out)
    }
}

pub(super) fn walk_avif(b: &[u8], info: &mut ContainerInfo) -> Res {
    let mut top = boxes(b, 0..b.len());
    match top.next() {
        Some(Ok(Bx { typ, body })) if &typ == b"ftyp" => {
            let brands = b.get(body).unwrap_or_default();
            let avif = brands
                .chunks_exact(4)
                .enumerate()
                .any(|(i, c)| i != 1 && matches!(c, b"avif" | b"avis"));
            if !avif {
                return Err(HeaderError::Malformed("ftyp without an AVIF brand"));
            }
        }
        Some(Ok(_)) => return Err(HeaderError::Malformed("AVIF file without ftyp")),
        Some(Err(e)) => return Err(e),
        None => return Err(HeaderError::Truncated("ftyp")),
    }
    let mut meta = None;
    let mut track = None;
    let mut error = None;
    for bx in top {
        match bx {
            Ok(Bx { typ, body }) if &typ == b"meta" && meta.is_none() => {
                meta = Some(walk_meta(b, body)?)
            }
            Ok(Bx { typ, body }) if &typ == b"moov" && track.is_none() => {
                track = walk_moov(b, body)?
            }
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    // A top-level box cut short (the file ends inside `mdat`, say) is a damaged file, even when
    // the primary item's data happens to lie before the cut.
    if let Some(e) = error {
        return Err(e);
    }
    let meta = meta.filter(|m| m.pict && m.primary.is_some());
    let mut image = AvifImage::default();
    if let Some(m) = &meta {
        let primary = m.primary.expect("filtered");
        let Some(item) = m.get(primary) else {
            return Err(HeaderError::Malformed("AVIF primary item is not described"));
        };
        match &item.typ {
            b"av01" => image.color = m.ranges(b, primary)?,
            b"grid" => image.grid = true,
            _ => {
                return Err(HeaderError::Malformed(
                    "AVIF primary item is not an AV1 image",
                ));
            }
        }
        let (mut size, mut rot, mut mir) = (None, 0, None);
        for p in m.props_of(primary) {
            match p {
                Prop::Ispe(w, h) => size = size.or(Some((*w, *h))),
                Prop::Irot(a) => rot = *a,
                Prop::Imir(axis) => mir = Some(*axis),
                Prop::Pixi(d) => image.depth = Some(*d),
                Prop::Nclx(n) => image.nclx = image.nclx.or(Some(*n)),
                Prop::Icc(r) if info.icc.is_none() => {
                    info.has_icc = true;
                    info.icc = b.get(r.clone()).map(<[u8]>::to_vec);
                }
                _ => {}
            }
        }
        let Some((w, h)) = size else {
            return Err(HeaderError::Malformed("AVIF primary item without ispe"));
        };
        (info.width, info.height) = (w, h);
        info.orientation = Some(orientation(rot, mir));
        // The alpha plane: an AV1 item that is an `auxl` of the primary item with an alpha URN.
        let alpha = m.refs.iter().find(|(t, from, to)| {
            t == b"auxl"
                && *to == primary
                && m.get(*from).is_some_and(|it| &it.typ == b"av01")
                && m.props_of(*from).any(|p| matches!(p, Prop::Alpha))
        });
        if let Some(&(_, alpha_id, _)) = alpha
            && !image.grid
        {
            image.alpha = Some(m.ranges(b, alpha_id)?);
            image.premultiplied = m
                .refs
                .iter()
                .any(|(t, from, to)| t == b"prem" && *from == primary && *to == alpha_id);
        }
        for (id, it) in &m.items {
            match &it.typ {
                b"Exif" => {
                    info.has_exif = true;
                    if info.exif.is_none()
                        && let Ok(ranges) = m.ranges(b, *id)
                    {
                        let mut data: Vec<u8> = ranges
                            .iter()
                            .flat_map(|r| b.get(r.clone()).unwrap_or_default())
                            .copied()
                            .collect();
                        // A 4-byte offset to the TIFF header precedes it.
                        let tiff = be32(&data, 0)
                            .and_then(to_usize)
                            .and_then(|o| o.checked_add(4))
                            .filter(|&o| o <= data.len());
                        info.exif = tiff.map(|o| data.split_off(o));
                    }
                }
                b"mime" if it.xmp => info.has_xmp = true,
                _ => {}
            }
        }
    }
    match (&meta, track) {
        (Some(_), Some((_, frames))) => info.frames = frames.max(1),
        (Some(_), None) => {}
        (None, Some((t, frames))) => {
            (info.width, info.height) = (t.width, t.height);
            info.frames = frames.max(1);
            image.color = vec![t.first];
            image.sequence = true;
        }
        (None, None) => {
            return Err(HeaderError::Malformed(
                "AVIF without a primary image or an image track",
            ));
        }
    }
    if info.width == 0 || info.height == 0 {
        return Err(HeaderError::Malformed("AVIF zero dimension"));
    }
    info.avif = Some(image);
    Ok(())
}

/// The EXIF orientation (1–8) that shows what `irot` (`angle` × 90° anticlockwise) then `imir`
/// (`axis` 0: about a vertical axis, left and right swap; 1: about a horizontal axis) show.
fn orientation(angle: u8, mirror: Option<u8>) -> u8 {
    match (angle & 3, mirror) {
        (0, None) => 1,
        (0, Some(0)) => 2,
        (0, Some(_)) => 4,
        (1, None) => 8,
        (1, Some(0)) => 7,
        (1, Some(_)) => 5,
        (2, None) => 3,
        (2, Some(0)) => 4,
        (2, Some(_)) => 2,
        (_, None) => 6,
        (_, Some(0)) => 5,
        (_, Some(_)) => 7,
    }
}

fn walk_meta(b: &[u8], body: Range<usize>) -> Result<Meta, HeaderError> {
    let Some((_, _, body)) = full(b, &body) else {
        return Err(HeaderError::Truncated("AVIF meta box"));
    };
    let mut m = Meta::default();
    for bx in boxes(b, body) {
        let Bx { typ, body } = bx?;
        match &typ {
            b"hdlr" => m.pict = b.get(body.start + 8..body.start + 12) == Some(b"pict"),
            b"pitm" => {
                let Some((v, _, p)) = full(b, &body) else {
                    return Err(HeaderError::Truncated("pitm"));
                };
                m.primary = field(b, p.start, v != 0).map(|(id, _)| id);
            }
            b"iinf" => walk_iinf(b, body, &mut m)?,
            b"iloc" => walk_iloc(b, body, &mut m)?,
            b"iref" => walk_iref(b, body, &mut m)?,
            b"iprp" => {
                for bx in boxes(b, body) {
                    let Bx { typ, body } = bx?;
                    match &typ {
                        b"ipco" => walk_ipco(b, body, &mut m)?,
                        b"ipma" => walk_ipma(b, body, &mut m)?,
                        _ => {}
                    }
                }
            }
            b"idat" => m.idat = Some(body),
            _ => {}
        }
    }
    Ok(m)
}

fn walk_iinf(b: &[u8], body: Range<usize>, m: &mut Meta) -> Res {
    let Some((v, _, p)) = full(b, &body) else {
        return Err(HeaderError::Truncated("iinf"));
    };
    let first = p.start + if v == 0 { 2 } else { 4 };
    for bx in boxes(b, first..p.end) {
        let Bx { typ, body } = bx?;
        if &typ != b"infe" {
            continue;
        }
        let Some((v, _, p)) = full(b, &body) else {
            continue;
        };
        if v < 2 {
            continue;
        }
        let Some((id, n)) = field(b, p.start, v != 2) else {
            return Err(HeaderError::Truncated("infe"));
        };
        let at = p.start + n;
        let Some(typ) = arr::<4>(b, at + 2) else {
            return Err(HeaderError::Truncated("infe"));
        };
        let xmp = &typ == b"mime"
            && cstr(b, at + 6, p.end)
                .and_then(|(_, next)| cstr(b, next, p.end))
                .is_some_and(|(ct, _)| ct == b"application/rdf+xml");
        let item = m.item(id);
        item.typ = typ;
        item.xmp = xmp;
    }
    Ok(())
}

fn walk_iloc(b: &[u8], body: Range<usize>, m: &mut Meta) -> Res {
    let trunc = HeaderError::Truncated("iloc");
    let (v, _, p) = full(b, &body).ok_or(trunc)?;
    if v > 2 {
        return Err(HeaderError::Malformed("iloc version"));
    }
    let sizes = be16(b, p.start).ok_or(trunc)?;
    let (off_size, len_size, base_size) = (
        usize::from(sizes >> 12),
        usize::from((sizes >> 8) & 15),
        usize::from((sizes >> 4) & 15),
    );
    let index_size = if v == 0 { 0 } else { usize::from(sizes & 15) };
    let mut at = p.start + 2;
    let (count, n) = field(b, at, v >= 2).ok_or(trunc)?;
    at += n;
    for _ in 0..count {
        let (id, n) = field(b, at, v >= 2).ok_or(trunc)?;
        at += n;
        let method = if v == 0 {
            0
        } else {
            let m = be16(b, at).ok_or(trunc)? & 15;
            at += 2;
            m
        };
        at += 2; // data_reference_index
        let base = uint(b, at, base_size).ok_or(HeaderError::Malformed("iloc field size"))?;
        at += base_size;
        let extents = be16(b, at).ok_or(trunc)?;
        at += 2;
        let mut list = Vec::new();
        for _ in 0..extents {
            at += index_size;
            let off = uint(b, at, off_size).ok_or(HeaderError::Malformed("iloc field size"))?;
            at += off_size;
            let len = uint(b, at, len_size).ok_or(HeaderError::Malformed("iloc field size"))?;
            at += len_size;
            if at > p.end {
                return Err(trunc);
            }
            list.push((base.saturating_add(off), len));
        }
        if at > p.end {
            return Err(trunc);
        }
        m.item(id).loc = Some((method, list));
    }
    Ok(())
}

fn walk_iref(b: &[u8], body: Range<usize>, m: &mut Meta) -> Res {
    let Some((v, _, p)) = full(b, &body) else {
        return Err(HeaderError::Truncated("iref"));
    };
    let n = if v == 0 { 2 } else { 4 };
    let id = |at| field(b, at, v != 0).map(|(id, _)| id);
    for bx in boxes(b, p) {
        let Bx { typ, body } = bx?;
        let (Some(from), Some(count)) = (id(body.start), be16(b, body.start + n)) else {
            return Err(HeaderError::Truncated("iref entry"));
        };
        for i in 0..usize::from(count) {
            let at = body.start + n + 2 + i * n;
            match id(at).filter(|_| at + n <= body.end) {
                Some(to) => m.refs.push((typ, from, to)),
                None => return Err(HeaderError::Truncated("iref entry")),
            }
        }
    }
    Ok(())
}

fn walk_ipco(b: &[u8], body: Range<usize>, m: &mut Meta) -> Res {
    for bx in boxes(b, body) {
        let Bx { typ, body } = bx?;
        let prop = match &typ {
            b"ispe" => match full(b, &body)
                .and_then(|(_, _, p)| Some((be32(b, p.start)?, be32(b, p.start + 4)?)))
            {
                Some((w, h)) => Prop::Ispe(w, h),
                None => return Err(HeaderError::Truncated("ispe")),
            },
            b"irot" => Prop::Irot(b.get(body.start).map_or(0, |a| a & 3)),
            b"imir" => Prop::Imir(b.get(body.start).map_or(0, |a| a & 1)),
            b"pixi" => match full(b, &body).and_then(|(_, _, p)| b.get(p.start + 1)) {
                Some(&d) => Prop::Pixi(d),
                None => Prop::Other,
            },
            b"colr" => match b.get(body.start..body.start + 4) {
                Some(b"nclx") => match (
                    be16(b, body.start + 4),
                    be16(b, body.start + 6),
                    be16(b, body.start + 8),
                    b.get(body.start + 10),
                ) {
                    (Some(primaries), Some(transfer), Some(matrix), Some(f)) => Prop::Nclx(Nclx {
                        primaries,
                        transfer,
                        matrix,
                        full_range: f & 0x80 != 0,
                    }),
                    _ => Prop::Other,
                },
                Some(b"prof" | b"rICC") => Prop::Icc(body.start + 4..body.end),
                _ => Prop::Other,
            },
            b"auxC" => match full(b, &body).and_then(|(_, _, p)| cstr(b, p.start, p.end)) {
                Some((urn, _)) if ALPHA_URNS.contains(&urn) => Prop::Alpha,
                _ => Prop::Other,
            },
            _ => Prop::Other,
        };
        m.props.push(prop);
    }
    Ok(())
}

fn walk_ipma(b: &[u8], body: Range<usize>, m: &mut Meta) -> Res {
    let trunc = HeaderError::Truncated("ipma");
    let (v, flags, p) = full(b, &body).ok_or(trunc)?;
    let count = be32(b, p.start).ok_or(trunc)?;
    let mut at = p.start + 4;
    for _ in 0..count {
        let (id, n) = field(b, at, v >= 1).ok_or(trunc)?;
        at += n;
        let n = *b.get(at).ok_or(trunc)?;
        at += 1;
        let mut props = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let index = if flags & 1 != 0 {
                let x = be16(b, at).ok_or(trunc)? & 0x7FFF;
                at += 2;
                x
            } else {
                let x = u16::from(*b.get(at).ok_or(trunc)? & 0x7F);
                at += 1;
                x
            };
            props.push(index);
        }
        if at > p.end {
            return Err(trunc);
        }
        m.item(id).props.extend(props);
    }
    Ok(())
}

/// The first frame of a sequence's picture track.
struct Track {
    width: u32,
    height: u32,
    first: Range<usize>,
}

/// The first picture (or video) track with an `av01` sample entry: its size, first sample and
/// sample count.
fn walk_moov(b: &[u8], body: Range<usize>) -> Result<Option<(Track, u32)>, HeaderError> {
    for bx in boxes(b, body) {
        let Bx { typ, body } = bx?;
        if &typ != b"trak" {
            continue;
        }
        let Some(mdia) = child(b, body, b"mdia")? else {
            continue;
        };
        let handler =
            child(b, mdia.clone(), b"hdlr")?.and_then(|h| b.get(h.start + 8..h.start + 12));
        if !matches!(handler, Some(b"pict" | b"vide")) {
            continue;
        }
        let Some(minf) = child(b, mdia, b"minf")? else {
            continue;
        };
        let Some(stbl) = child(b, minf, b"stbl")? else {
            continue;
        };
        let trunc = HeaderError::Truncated("AVIF sample table");
        let stsd = child(b, stbl.clone(), b"stsd")?.ok_or(trunc)?;
        // stsd: version/flags, entry count, then the first sample entry box: 6 reserved bytes,
        // data reference index, 16 bytes of pre-defined/reserved fields, width, height.
        let entry = stsd.start + 8;
        if b.get(entry + 4..entry + 8) != Some(b"av01") {
            continue;
        }
        let (Some(w), Some(h)) = (be16(b, entry + 32), be16(b, entry + 34)) else {
            return Err(trunc);
        };
        let stsz = child(b, stbl.clone(), b"stsz")?.ok_or(trunc)?;
        let (Some(fixed), Some(count)) = (be32(b, stsz.start + 4), be32(b, stsz.start + 8)) else {
            return Err(trunc);
        };
        let size = if fixed != 0 {
            fixed
        } else {
            be32(b, stsz.start + 12).ok_or(trunc)?
        };
        let offset = match child(b, stbl.clone(), b"stco")? {
            Some(stco) => be32(b, stco.start + 8).map(u64::from),
            None => child(b, stbl, b"co64")?.and_then(|co| be64(b, co.start + 8)),
        }
        .ok_or(trunc)?;
        let start = usize::try_from(offset).map_err(|_| trunc)?;
        let end = start
            .checked_add(to_usize(size).ok_or(trunc)?)
            .ok_or(trunc)?;
        if end > b.len() || size == 0 {
            return Err(HeaderError::Truncated("AVIF first frame"));
        }
        let track = Track {
            width: w.into(),
            height: h.into(),
            first: start..end,
        };
        return Ok(Some((track, count)));
    }
    Ok(None)
}

/// The payload of the first `typ` box inside `range`.
fn child(
    b: &[u8],
    range: Range<usize>,
    typ: &[u8; 4],
) -> Result<Option<Range<usize>>, HeaderError> {
    for bx in boxes(b, range) {
        let bx = bx?;
        if &bx.typ == typ {
            return Ok(Some(bx.body));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn fbx(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![version, 0, 0, 0];
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    /// A still AVIF (no real AV1 data): 300×200, `irot` 1, an alpha item, an Exif item with
    /// orientation 3 and GPS, an XMP item and an ICC profile; item data in `idat` (alpha) and
    /// `mdat` (the rest), `iloc` version 1 with 8-byte offsets.
    pub(in crate::container) fn avif_fixture() -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"avif\0\0\0\0mif1avif");
        let exif = {
            let mut e = vec![0, 0, 0, 0];
            e.extend_from_slice(b"MM\0*\0\0\0\x08\0\x02");
            e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0]);
            e.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0x26]);
            e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            e
        };
        let color = b"\x12\0\x0a\x0bCOLOR-AV1".to_vec();
        let meta = |mdat: u64| {
            let mut iloc = vec![0x84, 0x00, 0, 3]; // offsets 8 bytes, lengths 4; 3 items
            for (id, method, off, len) in [
                (1u16, 0u16, mdat, color.len()),
                (2, 1, 0, 5),
                (3, 0, mdat + color.len() as u64, exif.len()),
            ] {
                iloc.extend_from_slice(&id.to_be_bytes());
                iloc.extend_from_slice(&method.to_be_bytes());
                iloc.extend_from_slice(&[0, 0, 0, 1]);
                iloc.extend_from_slice(&off.to_be_bytes());
                iloc.extend_from_slice(&(len as u32).to_be_bytes());
            }
            let mut iinf = vec![0, 4];
            for (id, typ, extra) in [
                (1u8, b"av01", &b""[..]),
                (2, b"av01", b""),
                (3, b"Exif", b""),
                (4, b"mime", b"application/rdf+xml\0"),
            ] {
                let mut e = vec![0, id, 0, 0];
                e.extend_from_slice(typ);
                e.push(0);
                e.extend_from_slice(extra);
                iinf.extend(fbx(b"infe", 2, &e));
            }
            let mut ipco = fbx(b"ispe", 0, &[0, 0, 1, 44, 0, 0, 0, 200]);
            ipco.extend(bx(b"irot", &[1]));
            ipco.extend(bx(b"colr", b"profICC-PROFILE"));
            ipco.extend(fbx(
                b"auxC",
                0,
                b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0",
            ));
            ipco.extend(bx(
                b"colr",
                &[b'n', b'c', b'l', b'x', 0, 12, 0, 13, 0, 6, 0x80],
            ));
            let mut iprp = bx(b"ipco", &ipco);
            iprp.extend(fbx(
                b"ipma",
                0,
                &[
                    0, 0, 0, 2, 0, 1, 4, 0x81, 0x82, 0x83, 0x85, 0, 2, 2, 0x81, 0x84,
                ],
            ));
            let mut body = fbx(b"hdlr", 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
            body.extend(fbx(b"pitm", 0, &[0, 1]));
            body.extend(fbx(b"iloc", 1, &iloc));
            body.extend(fbx(b"iinf", 0, &iinf));
            body.extend(fbx(
                b"iref",
                0,
                &[0, 0, 0, 14, b'a', b'u', b'x', b'l', 0, 2, 0, 1, 0, 1],
            ));
            body.extend(bx(b"iprp", &iprp));
            body.extend(bx(b"idat", b"ALPHA"));
            fbx(b"meta", 0, &body)
        };
        let start = (ftyp.len() + meta(0).len() + 8) as u64;
        let mut out = ftyp;
        out.extend(meta(start));
        let mut mdat = color.clone();
        mdat.extend_from_slice(&exif);
        out.extend(bx(b"mdat", &mdat));
        out
    }

    /// An image sequence without a primary item: one `pict` track of 5 samples, 64×48.
    pub(in crate::container) fn avifs_fixture() -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"avis\0\0\0\0avismsf1");
        let moov = |first: u32| {
            let mut entry = vec![0; 24];
            entry.extend_from_slice(&[0, 64, 0, 48]);
            entry.extend_from_slice(&[0; 50]);
            let mut stsd = vec![0, 0, 0, 1];
            stsd.extend(bx(b"av01", &entry));
            let mut stbl = fbx(b"stsd", 0, &stsd);
            stbl.extend(fbx(
                b"stsz",
                0,
                &[
                    0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
                    0, 1,
                ],
            ));
            let mut stco = vec![0, 0, 0, 1];
            stco.extend_from_slice(&first.to_be_bytes());
            stbl.extend(fbx(b"stco", 0, &stco));
            let minf = bx(b"stbl", &stbl);
            let mut mdia = fbx(b"hdlr", 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
            mdia.extend(bx(b"minf", &minf));
            bx(b"moov", &bx(b"trak", &bx(b"mdia", &mdia)))
        };
        let start = (ftyp.len() + moov(0).len() + 8) as u32;
        let mut out = ftyp;
        out.extend(moov(start));
        out.extend(bx(b"mdat", b"FIRST-AV1abcd"));
        out
    }

    #[test]
    fn still_image_items_and_properties() {
        let f = avif_fixture();
        let i = read(&f, Kind::Avif, 1).unwrap();
        assert_eq!((i.width, i.height, i.frames), (300, 200, 1));
        // irot 1 (90° anticlockwise) is EXIF orientation 8; the EXIF item's 3 is ignored.
        assert_eq!(i.orientation, Some(8));
        assert!(i.has_exif && i.has_gps && i.has_xmp && i.has_icc);
        assert_eq!(i.icc.as_deref(), Some(&b"ICC-PROFILE"[..]));
        let a = i.avif.unwrap();
        assert_eq!(&f[a.color[0].clone()], b"\x12\0\x0a\x0bCOLOR-AV1");
        let alpha = a.alpha.unwrap();
        assert_eq!(&f[alpha[0].clone()], b"ALPHA");
        assert_eq!(
            a.nclx,
            Some(Nclx {
                primaries: 12,
                transfer: 13,
                matrix: 6,
                full_range: true
            })
        );
        assert!(!a.sequence && !a.grid && !a.premultiplied);
    }

    #[test]
    fn sequence_without_a_primary_item_shows_its_first_frame() {
        let f = avifs_fixture();
        let i = read(&f, Kind::Avif, 1).unwrap();
        assert_eq!((i.width, i.height, i.frames), (64, 48, 5));
        let a = i.avif.unwrap();
        assert!(a.sequence);
        assert_eq!(&f[a.color[0].clone()], b"FIRST-AV1");
    }

    #[test]
    fn irot_and_imir_compose_to_exif_orientations() {
        // Each (angle, mirror) against a 2×3 grid turned by hand.
        let grid = [[0u8, 1], [2, 3], [4, 5]];
        let turn = |g: &Vec<Vec<u8>>| -> Vec<Vec<u8>> {
            // 90° anticlockwise.
            let (h, w) = (g.len(), g[0].len());
            (0..w)
                .map(|x| (0..h).map(|y| g[y][w - 1 - x]).collect())
                .collect()
        };
        let exif = |g: &Vec<Vec<u8>>, o: u8| -> Vec<Vec<u8>> {
            let (h, w) = (g.len(), g[0].len());
            let at = |x: usize, y: usize| g[y][x];
            let (ow, oh) = if o >= 5 { (h, w) } else { (w, h) };
            (0..oh)
                .map(|y| {
                    (0..ow)
                        .map(|x| match o {
                            1 => at(x, y),
                            2 => at(w - 1 - x, y),
                            3 => at(w - 1 - x, h - 1 - y),
                            4 => at(x, h - 1 - y),
                            5 => at(y, x),
                            6 => at(y, h - 1 - x),
                            7 => at(w - 1 - y, h - 1 - x),
                            _ => at(w - 1 - y, x),
                        })
                        .collect()
                })
                .collect()
        };
        let start: Vec<Vec<u8>> = grid.iter().map(|r| r.to_vec()).collect();
        for angle in 0..4u8 {
            for mirror in [None, Some(0u8), Some(1)] {
                let mut g = start.clone();
                for _ in 0..angle {
                    g = turn(&g);
                }
                match mirror {
                    Some(0) => g.iter_mut().for_each(|r| r.reverse()),
                    Some(_) => g.reverse(),
                    None => {}
                }
                let o = orientation(angle, mirror);
                assert_eq!(exif(&start, o), g, "irot {angle} imir {mirror:?} → {o}");
            }
        }
    }

    #[test]
    fn limits_come_from_ispe_and_errors_are_typed() {
        let mut f = avif_fixture();
        // ispe 300×200 → 70000×200.
        let at = f.windows(4).position(|w| w == b"ispe").unwrap() + 8;
        f[at..at + 4].copy_from_slice(&70_000u32.to_be_bytes());
        assert_eq!(read(&f, Kind::Avif, 1).unwrap().width, 70_000);
        // No AVIF brand.
        let mut g = avif_fixture();
        g[8..12].copy_from_slice(b"heic");
        g[16..24].copy_from_slice(b"mif1heic");
        assert!(matches!(
            read(&g, Kind::Avif, 1),
            Err(HeaderError::Malformed(_))
        ));
        // Cut inside the item data.
        let f = avif_fixture();
        assert!(matches!(
            read(&f[..f.len() - 3], Kind::Avif, 1),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(
            read(&f[..10], Kind::Avif, 1),
            Err(HeaderError::Truncated(_))
        ));
    }
}
