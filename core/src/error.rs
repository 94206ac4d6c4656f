//! The one error type of imgest, and its stable codes.
//!
//! Every binding (Python, JavaScript, C, HTTP) maps [`ErrorCode`] in a single table. Codes are
//! append-only: a number or string, once published, never changes meaning.

use std::fmt;

/// Which resource limit an input exceeded. See [`crate::Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum LimitKind {
    /// The encoded input is larger than `max_input_bytes`.
    InputBytes,
    /// Width × height is larger than `max_pixels`.
    Pixels,
    /// The width is larger than `max_width`.
    Width,
    /// The height is larger than `max_height`.
    Height,
    /// The animation has more frames than `max_frames`.
    Frames,
    /// Decoding would allocate more than `max_alloc_bytes`.
    Alloc,
    /// A JPEG has more scans than `max_scans` (each progressive scan is a pass over the image).
    Scans,
    /// The embedded ICC profile (decompressed) is larger than `max_icc_bytes`.
    IccBytes,
}

impl LimitKind {
    /// A stable snake_case name for the limit (`"pixels"`, `"input_bytes"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::InputBytes => "input_bytes",
            LimitKind::Pixels => "pixels",
            LimitKind::Width => "width",
            LimitKind::Height => "height",
            LimitKind::Frames => "frames",
            LimitKind::Alloc => "alloc_bytes",
            LimitKind::Scans => "scans",
            LimitKind::IccBytes => "icc_bytes",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong, grouped by who is at fault.
///
/// Use [`Error::code`] to branch; the message is for humans and may change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recognised image format that imgest does not accept (HEIC, PSD, JPEG 2000, lossless
    /// JPEG, …), or binary data in no format imgest knows.
    #[error("unsupported image format: {detail}")]
    UnsupportedFormat {
        /// What was recognised, if anything.
        detail: String,
    },
    /// The input is not an image at all: empty, text, HTML, SVG, an archive, …
    #[error("not an image: {detail}")]
    NotAnImage {
        /// What the input looks like instead.
        detail: String,
    },
    /// The input claims to be an image of a supported format but is truncated or malformed.
    #[error("corrupt or truncated {format} data: {detail}")]
    CorruptInput {
        /// The format the magic bytes announced (`"jpeg"`, `"png"`, …).
        format: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The input exceeds a configured resource limit. Checked from the header, before decoding.
    #[error("limit exceeded: {limit} is {actual}, the maximum is {max}")]
    LimitExceeded {
        /// Which limit.
        limit: LimitKind,
        /// The value the input has (or declares).
        actual: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The caller's [`crate::Options`] are invalid.
    #[error("invalid option `{field}`: {reason}")]
    InvalidOptions {
        /// The offending field, as a dotted path (`variants[1].quality`).
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An encoder failed on valid pixels.
    #[error("encoding to {format} failed: {detail}")]
    EncodeFailed {
        /// The output format.
        format: &'static str,
        /// What the encoder reported.
        detail: String,
    },
    /// A [`crate::storage::Storage`] backend failed, or a key was invalid.
    #[error("storage error: {detail}")]
    Storage {
        /// What went wrong.
        detail: String,
        /// The underlying I/O error, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The run took longer than its time budget ([`crate::Options::timeout_ms`]) and was
    /// stopped. The same input with the same budget would most likely time out again.
    #[error("time budget exceeded: stopped after {elapsed_ms} ms of a {timeout_ms} ms budget")]
    Timeout {
        /// The budget, in milliseconds.
        timeout_ms: u64,
        /// How long the run had taken when a check found the budget spent.
        elapsed_ms: u64,
    },
    /// The run was cancelled through its [`crate::CancelToken`] (in JavaScript, its
    /// `AbortSignal`).
    #[error("cancelled by the caller")]
    Cancelled,
    /// A bug in imgest. Please report it.
    #[error("internal error: {detail}")]
    Internal {
        /// What went wrong.
        detail: String,
    },
}

/// Stable numeric and string codes for [`Error`], shared by every binding.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum ErrorCode {
    /// See [`Error::UnsupportedFormat`].
    UnsupportedFormat = 1,
    /// See [`Error::NotAnImage`].
    NotAnImage = 2,
    /// See [`Error::CorruptInput`].
    CorruptInput = 3,
    /// See [`Error::LimitExceeded`].
    LimitExceeded = 4,
    /// See [`Error::InvalidOptions`].
    InvalidOptions = 5,
    /// See [`Error::EncodeFailed`].
    EncodeFailed = 6,
    /// See [`Error::Storage`].
    Storage = 7,
    /// See [`Error::Timeout`].
    Timeout = 8,
    /// See [`Error::Cancelled`].
    Cancelled = 9,
    /// See [`Error::Internal`].
    Internal = 255,
}

impl ErrorCode {
    /// Every code, in numeric order. Bindings iterate this to prove their mapping is complete.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::UnsupportedFormat,
        ErrorCode::NotAnImage,
        ErrorCode::CorruptInput,
        ErrorCode::LimitExceeded,
        ErrorCode::InvalidOptions,
        ErrorCode::EncodeFailed,
        ErrorCode::Storage,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
    ];

    /// The stable snake_case string (`"limit_exceeded"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::NotAnImage => "not_an_image",
            ErrorCode::CorruptInput => "corrupt_input",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::InvalidOptions => "invalid_options",
            ErrorCode::EncodeFailed => "encode_failed",
            ErrorCode::Storage => "storage",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal",
        }
    }

    /// The stable number (`4` for `limit_exceeded`).
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// Looks a code up by its string.
    pub fn from_str_code(s: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::UnsupportedFormat { .. } => ErrorCode::UnsupportedFormat,
            Error::NotAnImage { .. } => ErrorCode::NotAnImage,
            Error::CorruptInput { .. } => ErrorCode::CorruptInput,
            Error::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            Error::InvalidOptions { .. } => ErrorCode::InvalidOptions,
            Error::EncodeFailed { .. } => ErrorCode::EncodeFailed,
            Error::Storage { .. } => ErrorCode::Storage,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// For [`Error::LimitExceeded`], which limit; `None` otherwise.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            Error::LimitExceeded { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    pub(crate) fn corrupt(format: &'static str, detail: impl Into<String>) -> Error {
        Error::CorruptInput {
            format,
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Error {
        Error::UnsupportedFormat {
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidOptions {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Error {
        Error::Internal {
            detail: detail.into(),
        }
    }

    pub(crate) fn limit_exceeded(limit: LimitKind, actual: u64, max: u64) -> Error {
        Error::LimitExceeded { limit, actual, max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_unique() {
        let expected = [
            (1, "unsupported_format"),
            (2, "not_an_image"),
            (3, "corrupt_input"),
            (4, "limit_exceeded"),
            (5, "invalid_options"),
            (6, "encode_failed"),
            (7, "storage"),
            (8, "timeout"),
            (9, "cancelled"),
            (255, "internal"),
        ];
        assert_eq!(ErrorCode::ALL.len(), expected.len());
        for (code, (n, s)) in ErrorCode::ALL.iter().zip(expected) {
            assert_eq!(code.as_u32(), n);
            assert_eq!(code.as_str(), s);
            assert_eq!(ErrorCode::from_str_code(s), Some(*code));
        }
        assert_eq!(ErrorCode::from_str_code("nope"), None);
    }

    #[test]
    fn every_variant_maps_to_its_code() {
        let cases = [
            (Error::unsupported("x"), ErrorCode::UnsupportedFormat),
            (
                Error::NotAnImage { detail: "x".into() },
                ErrorCode::NotAnImage,
            ),
            (Error::corrupt("png", "x"), ErrorCode::CorruptInput),
            (
                Error::limit_exceeded(LimitKind::Pixels, 2, 1),
                ErrorCode::LimitExceeded,
            ),
            (Error::invalid("a", "b"), ErrorCode::InvalidOptions),
            (
                Error::EncodeFailed {
                    format: "webp",
                    detail: "x".into(),
                },
                ErrorCode::EncodeFailed,
            ),
            (
                Error::Storage {
                    detail: "x".into(),
                    source: None,
                },
                ErrorCode::Storage,
            ),
            (
                Error::Timeout {
                    timeout_ms: 1,
                    elapsed_ms: 2,
                },
                ErrorCode::Timeout,
            ),
            (Error::Cancelled, ErrorCode::Cancelled),
            (Error::internal("x"), ErrorCode::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(
            Error::limit_exceeded(LimitKind::Frames, 2, 1).limit(),
            Some(LimitKind::Frames)
        );
    }
}
