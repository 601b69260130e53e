//! Files attached to a referral (R4.2): reports, ECGs, images. What a file is comes from its
//! first bytes, never from the name or the type the browser claims, so that a renamed
//! executable cannot travel between units as "报告.pdf".

use crate::{FieldError, Invalid};

/// The largest file one attachment may hold: a multi-page scanned report or a handful of
/// key images, not a whole imaging study (those stay in the shared imaging centre's archive).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// How many files one referral may carry.
pub const MAX_PER_REFERRAL: i64 = 20;
const MAX_NAME_CHARS: usize = 120;

/// The kinds of file medgrid accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    Png,
    Jpeg,
    /// DICOM Part 10 file (a single image or ECG waveform object).
    Dicom,
}

impl MediaType {
    pub fn as_mime(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Dicom => "application/dicom",
        }
    }

    /// Recognises a file by its signature.
    pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
        if bytes.starts_with(b"%PDF-") {
            Some(MediaType::Pdf)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(MediaType::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(MediaType::Jpeg)
        } else if bytes.get(128..132) == Some(b"DICM") {
            // Part 10: a 128-byte preamble, then the magic.
            Some(MediaType::Dicom)
        } else {
            None
        }
    }
}

/// A file that passed the checks: a clean display name and its real type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub file_name: String,
    pub media_type: MediaType,
}

/// Checks an uploaded file, reporting every problem at once.
pub fn check(file_name: &str, bytes: &[u8]) -> Result<Checked, Invalid> {
    let mut inv = Invalid::default();
    // Browsers on some systems send the whole client path; only the last part is the name.
    let name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() {
        inv.push(FieldError::required("file_name"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        inv.push(FieldError::new(
            "file_name",
            "too_long",
            format!("文件名不能超过 {MAX_NAME_CHARS} 个字"),
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        inv.push(FieldError::new(
            "file_name",
            "invalid",
            "文件名含有控制字符",
            "the name contains control characters",
        ));
    }
    let media_type = if bytes.is_empty() {
        inv.push(FieldError::new(
            "file",
            "empty",
            "文件为空",
            "the file is empty",
        ));
        None
    } else if bytes.len() > MAX_BYTES {
        inv.push(too_large());
        None
    } else {
        let t = MediaType::sniff(bytes);
        if t.is_none() {
            inv.push(FieldError::new(
                "file",
                "unsupported_type",
                "只接受 PDF、PNG、JPEG 或 DICOM 文件",
                "only PDF, PNG, JPEG or DICOM files are accepted",
            ));
        }
        t
    };
    match media_type {
        Some(media_type) if inv.is_empty() => Ok(Checked {
            file_name: name,
            media_type,
        }),
        _ => Err(inv),
    }
}

/// The refusal for a file over [`MAX_BYTES`], also used where the body is cut off early.
pub fn too_large() -> FieldError {
    FieldError::new(
        "file",
        "too_large",
        format!("文件不能超过 {} MB", MAX_BYTES / 1024 / 1024),
        format!("at most {} MB", MAX_BYTES / 1024 / 1024),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(MediaType::sniff(b"%PDF-1.7\n..."), Some(MediaType::Pdf));
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(MediaType::Jpeg)
        );
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM\x02\x00");
        assert_eq!(MediaType::sniff(&dicom), Some(MediaType::Dicom));
        assert_eq!(MediaType::sniff(b"MZ\x90\x00"), None);
        let renamed = check("报告.pdf", b"MZ\x90\x00 not a pdf").unwrap_err();
        assert_eq!(renamed.0[0].code, "unsupported_type");
    }

    #[test]
    fn names_lose_their_client_path_and_bad_files_report_every_problem() {
        let ok = check("C:\\Users\\doc\\心电图.pdf", b"%PDF-1.4").unwrap();
        assert_eq!(ok.file_name, "心电图.pdf");
        assert_eq!(ok.media_type.as_mime(), "application/pdf");
        let bad = check("  ", b"").unwrap_err();
        let fields: Vec<_> = bad.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["file_name", "file"]);
        let big = vec![b'%'; MAX_BYTES + 1];
        assert_eq!(check("a.pdf", &big).unwrap_err().0[0].code, "too_large");
    }
}
