//! Synthetic images: what a dataset record says about an image the client makes at send time.
//!
//! A record carries `images: [{"width": 1000, "height": 1000, "format": "jpeg", "seed": 42}]`;
//! the client turns each spec into the same pixels every time (from `seed`), encodes them and
//! attaches them as `data:` URLs. Sizes and formats are documented in docs/DATASETS.md.

use serde::{Deserialize, Serialize};

/// Encoding of a synthetic image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// Baseline JPEG, quality 85, 4:2:0 (what most photos on the web are).
    #[default]
    Jpeg,
    /// 8-bit RGB PNG, default compression.
    Png,
}

impl ImageFormat {
    /// The MIME type of the data URL.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// One synthetic image of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoding.
    #[serde(default)]
    pub format: ImageFormat,
    /// The pixels' seed: the same seed gives the same image.
    pub seed: u64,
}

/// Largest width or height of a synthetic image.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Named sizes (SambaNova's presets): `small` 500x500, `medium` 1000x1000, `large` 2000x2000.
pub const IMAGE_PRESETS: [(&str, u32, u32); 3] = [
    ("small", 500, 500),
    ("medium", 1000, 1000),
    ("large", 2000, 2000),
];

/// Parses an image size: a preset name or `WxH` (each side 1..=[`MAX_IMAGE_SIDE`]).
pub fn parse_image_size(s: &str) -> Result<(u32, u32), String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(&(_, w, h)) = IMAGE_PRESETS.iter().find(|p| p.0 == t) {
        return Ok((w, h));
    }
    let bad = || {
        format!(
            "{s:?} is not an image size: small (500x500), medium (1000x1000), large (2000x2000) or WxH"
        )
    };
    let (w, h) = t.split_once('x').ok_or_else(bad)?;
    let side = |v: &str| -> Result<u32, String> {
        match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_IMAGE_SIDE).contains(&n) => Ok(n),
            Ok(n) => Err(format!("{s:?}: side {n} is outside 1..={MAX_IMAGE_SIDE}")),
            Err(_) => Err(bad()),
        }
    };
    Ok((side(w)?, side(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_image_size("small"), Ok((500, 500)));
        assert_eq!(parse_image_size("Large"), Ok((2000, 2000)));
        assert_eq!(parse_image_size("640x480"), Ok((640, 480)));
        assert!(parse_image_size("0x10").unwrap_err().contains("outside"));
        assert!(parse_image_size("9000x10").unwrap_err().contains("outside"));
        assert!(
            parse_image_size("huge")
                .unwrap_err()
                .contains("not an image size")
        );
        assert!(
            parse_image_size("10x")
                .unwrap_err()
                .contains("not an image size")
        );
    }

    #[test]
    fn spec_round_trip() {
        let s = SyntheticImage {
            width: 3,
            height: 2,
            format: ImageFormat::Png,
            seed: 7,
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"width":3,"height":2,"format":"png","seed":7}"#);
        assert_eq!(serde_json::from_str::<SyntheticImage>(&j).unwrap(), s);
    }
}
