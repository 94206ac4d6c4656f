//! The TIFF structure reader (TIFF files, EXIF payloads, JPEG MPF indexes) and the EXIF walk:
//! orientation, GPS and MakerNote presence, with a fixed entry budget.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) struct Tiff<'a> {
    pub(super) d: &'a [u8],
    pub(super) le: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) tag: u16,
    pub(super) typ: u16,
    count: u32,
    /// Offset of the 12-byte entry in the TIFF data.
    at: usize,
}

/// Byte size of one value of a TIFF field type (None for unknown types).
fn tiff_type_size(typ: u16) -> Option<usize> {
    match typ {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

impl<'a> Tiff<'a> {
    pub(super) fn parse(d: &'a [u8]) -> Option<Self> {
        let le = match d.get(0..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Self { d, le })
    }

    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        let a = arr::<2>(self.d, at)?;
        Some(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }

    pub(super) fn u32(&self, at: usize) -> Option<u32> {
        let a = arr::<4>(self.d, at)?;
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    pub(super) fn first_ifd(&self) -> Option<usize> {
        to_usize(self.u32(4)?)
    }

    /// Declared entry count of the IFD at `off` and how many of those entries
    /// are actually present in the data.
    pub(super) fn entry_counts(&self, off: usize) -> Option<(usize, usize)> {
        let declared = usize::from(self.u16(off)?);
        let avail = self.d.len().saturating_sub(off.checked_add(2)?) / 12;
        Some((declared, declared.min(avail)))
    }

    /// The entries of the IFD at `off` that lie inside the data (at most
    /// 65535, and never more than `len / 12`).
    pub(super) fn entries(&self, off: usize) -> impl Iterator<Item = Entry> + 'a {
        let t = *self;
        let n = self.entry_counts(off).map_or(0, |(_, n)| n);
        (0..n).filter_map(move |i| {
            let at = off.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
            Some(Entry {
                tag: t.u16(at)?,
                typ: t.u16(at.checked_add(2)?)?,
                count: t.u32(at.checked_add(4)?)?,
                at,
            })
        })
    }

    /// Offset of the IFD following the one at `off` (0 = none).
    pub(super) fn next_ifd(&self, off: usize) -> Option<usize> {
        let count = usize::from(self.u16(off)?);
        let at = off.checked_add(2)?.checked_add(count.checked_mul(12)?)?;
        to_usize(self.u32(at)?)
    }

    /// Total byte size of an entry's value, if the type is known.
    pub(super) fn value_size(e: &Entry) -> Option<usize> {
        tiff_type_size(e.typ)?.checked_mul(to_usize(e.count)?)
    }

    /// The raw bytes of an entry's value (borrowed, never copied).
    pub(super) fn value(&self, e: &Entry) -> Option<&'a [u8]> {
        let size = Self::value_size(e)?;
        let field = e.at.checked_add(8)?;
        if size <= 4 {
            slice(self.d, field, size)
        } else {
            slice(self.d, to_usize(self.u32(field)?)?, size)
        }
    }

    /// First value of an unsigned integer entry (BYTE, SHORT, LONG, IFD).
    pub(super) fn uint(&self, e: &Entry) -> Option<u32> {
        if e.count == 0 {
            return None;
        }
        let v = self.value(e)?;
        let t = Tiff { d: v, le: self.le };
        match e.typ {
            1 => v.first().copied().map(u32::from),
            3 => t.u16(0).map(u32::from),
            4 | 13 => t.u32(0),
            _ => None,
        }
    }
}

/// Which IFD a walk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Tiff,
    Exif,
    Gps,
    Interop,
}

const TAG_ORIENTATION: u16 = 0x0112;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_GPS_IFD: u16 = 0x8825;
const TAG_INTEROP_IFD: u16 = 0xA005;
const TAG_MAKERNOTE: u16 = 0x927C;

/// Upper bound on IFD visits + entries of one walk. Real EXIF blocks have a
/// few hundred entries at most.
const EXIF_ENTRY_BUDGET: usize = 8192;
/// At most this many top-level IFDs are followed.
const EXIF_MAX_TOP_IFDS: usize = 8;

/// Bounded structural walk of an EXIF/TIFF IFD tree: presence of GPS and
/// MakerNote.
#[derive(Debug, Default)]
pub(super) struct ExifWalk {
    spent: usize,
    pub(super) gps: bool,
    pub(super) makernote: bool,
    /// The budget ran out, or a pointer was malformed: the walk stopped.
    stopped: bool,
}

impl ExifWalk {
    pub(super) fn run(t: &Tiff<'_>) -> Self {
        let mut w = Self::default();
        let mut off = t.first_ifd();
        let mut index = 0usize;
        while let Some(o) = off.filter(|&o| o != 0) {
            if index >= EXIF_MAX_TOP_IFDS || w.stopped {
                break;
            }
            w.visit(t, o, Ctx::Tiff);
            off = t.next_ifd(o);
            index = index.saturating_add(1);
        }
        w
    }

    /// Charges one unit of work; returns false (and stops the walk) once the
    /// budget is exhausted.
    fn charge(&mut self) -> bool {
        self.spent = self.spent.saturating_add(1);
        if self.spent > EXIF_ENTRY_BUDGET {
            self.stopped = true;
        }
        !self.stopped
    }

    fn visit(&mut self, t: &Tiff<'_>, off: usize, ctx: Ctx) {
        if !self.charge() {
            return;
        }
        for e in t.entries(off) {
            if !self.charge() {
                return;
            }
            let child = match (ctx, e.tag) {
                (Ctx::Tiff, TAG_EXIF_IFD) => Some(Ctx::Exif),
                (Ctx::Tiff, TAG_GPS_IFD) => {
                    self.gps = true;
                    Some(Ctx::Gps)
                }
                (Ctx::Exif, TAG_INTEROP_IFD) => Some(Ctx::Interop),
                (Ctx::Exif, TAG_MAKERNOTE) => {
                    self.makernote = true;
                    None
                }
                _ => None,
            };
            if let Some(child) = child {
                // A pointer is one value in the entry itself.
                if Tiff::value_size(&e).is_none_or(|s| s > 4) {
                    self.stopped = true;
                    return;
                }
                if let Some(o) = t.uint(&e).and_then(to_usize) {
                    self.visit(t, o, child);
                }
            }
        }
    }
}

/// Fills `has_exif`, `has_gps`, `has_makernote` and `orientation` from a raw
/// EXIF (TIFF) payload.
pub(super) fn analyze_exif(payload: &[u8], info: &mut ContainerInfo) {
    info.has_exif = true;
    let Some(t) = Tiff::parse(payload) else {
        return;
    };
    let w = ExifWalk::run(&t);
    info.has_gps |= w.gps;
    info.has_makernote |= w.makernote;
    // The primary image's Orientation: the first IFD's tag, its first value.
    info.orientation = t
        .first_ifd()
        .and_then(|ifd| t.entries(ifd).find(|e| e.tag == TAG_ORIENTATION))
        .and_then(|e| t.uint(&e))
        .and_then(valid_orientation);
}

/// Orientation value if it is one of the eight defined values.
pub(super) fn valid_orientation(v: u32) -> Option<u8> {
    u8::try_from(v).ok().filter(|v| (1..=8).contains(v))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Instant;

    /// Appends a big-endian IFD (entries: tag, type, count, 4 value bytes).
    pub(in crate::container) fn ifd_be(t: &mut Vec<u8>, entries: &[(u16, u16, u32, [u8; 4])]) {
        t.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for &(tag, typ, count, value) in entries {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&typ.to_be_bytes());
            t.extend_from_slice(&count.to_be_bytes());
            t.extend_from_slice(&value);
        }
        t.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Minimal big-endian EXIF TIFF: Orientation=6, Exif IFD with a MakerNote,
    /// GPS IFD with GPSVersionID.
    pub(in crate::container) fn exif_tiff() -> Vec<u8> {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        // IFD0 at 8: 2 + 3*12 + 4 = 42 bytes -> Exif IFD at 50 (18 bytes),
        // GPS IFD at 68 (18 bytes), MakerNote data at 86.
        ifd_be(
            &mut t,
            &[
                (0x0112, 3, 1, [0, 6, 0, 0]),
                (0x8769, 4, 1, 50u32.to_be_bytes()),
                (0x8825, 4, 1, 68u32.to_be_bytes()),
            ],
        );
        ifd_be(&mut t, &[(0x927C, 7, 8, 86u32.to_be_bytes())]);
        ifd_be(&mut t, &[(0x0000, 1, 4, [2, 2, 0, 0])]);
        assert_eq!(t.len(), 86);
        t.extend_from_slice(b"MAKERNTE");
        t
    }

    #[test]
    fn orientation_out_of_range_is_none() {
        for (v, want) in [(0u8, None), (9, None), (1, Some(1)), (8, Some(8))] {
            let mut t = b"MM\0*".to_vec();
            t.extend_from_slice(&8u32.to_be_bytes());
            ifd_be(&mut t, &[(0x0112, 3, 1, [0, v, 0, 0])]);
            let mut info = ContainerInfo::default();
            analyze_exif(&t, &mut info);
            assert_eq!(info.orientation, want, "value {v}");
            assert!(info.has_exif && !info.has_gps);
        }
    }

    /// Overlapping child IFDs would make an unbounded walk quadratic in the
    /// payload; the walk stops at its budget, and the orientation (one lookup
    /// in the first IFD) is still read.
    #[test]
    fn hostile_exif_is_bounded() {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        let n = 5000u32;
        let region = 8 + 2 + 12 * n + 4;
        let mut entries = vec![(0x0112, 3, 1, [0, 3, 0, 0])];
        for i in 0..n - 1 {
            entries.push((0x8769, 4, 1, (region + 2 * i).to_be_bytes()));
        }
        ifd_be(&mut t, &entries);
        t.resize(t.len() + 60_000, 0x01);
        let start = Instant::now();
        let mut info = ContainerInfo::default();
        analyze_exif(&t, &mut info);
        assert!(info.has_exif && info.orientation == Some(3));
        assert!(start.elapsed().as_secs() < 2);
    }
}
