//! Synthetic images (`dataset.images`): pixels from a seed, encoded as JPEG or PNG.
//!
//! The picture is a smooth field of colour (bilinear between random colours on a coarse
//! grid, about 24 cells across) with a little per-pixel grain (-7 to +8 levels), so it compresses
//! like a photograph rather than like a flat colour or pure noise, and no two seeds give the
//! same image (a server's image cache never serves one request from another's). The same seed
//! gives the same bytes on every machine: the pixels are integer arithmetic on SplitMix64
//! hashes, and both encoders are deterministic.

use base64::Engine as _;
use bench_text::seed::mix64;
use bench_types::image::{ImageFormat, SyntheticImage};

/// JPEG quality of synthetic images.
pub const JPEG_QUALITY: u8 = 85;

/// The RGB pixels of `spec`, row by row.
pub fn pixels(spec: &SyntheticImage) -> Vec<u8> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let cell = (w.max(h) / 24).max(4);
    let (gw, gh) = (w / cell + 2, h / cell + 2);
    let grid: Vec<[i32; 3]> = (0..gw * gh)
        .map(|i| {
            let r = mix64(spec.seed ^ mix64(i as u64 + 1));
            [
                (r & 0xff) as i32,
                ((r >> 8) & 0xff) as i32,
                ((r >> 16) & 0xff) as i32,
            ]
        })
        .collect();
    let mut out = vec![0u8; w * h * 3];
    let grain_seed = mix64(spec.seed ^ 0x4752_4149_4e00_0000);
    for y in 0..h {
        let (gy, fy) = (y / cell, (y % cell) as i32);
        let row = &mut out[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let (gx, fx) = (x / cell, (x % cell) as i32);
            let c = cell as i32;
            let at = |dx: usize, dy: usize| &grid[(gy + dy) * gw + gx + dx];
            let (a, b, cc, d) = (at(0, 0), at(1, 0), at(0, 1), at(1, 1));
            let g = mix64(grain_seed ^ ((y as u64) << 32 | x as u64));
            for k in 0..3 {
                let top = a[k] * (c - fx) + b[k] * fx;
                let bottom = cc[k] * (c - fx) + d[k] * fx;
                let v = (top * (c - fy) + bottom * fy) / (c * c);
                let grain = ((g >> (k * 8)) & 0x0f) as i32 - 7;
                row[x * 3 + k] = (v + grain).clamp(0, 255) as u8;
            }
        }
    }
    out
}

/// `spec` encoded in its format.
pub fn encode(spec: &SyntheticImage) -> Result<Vec<u8>, String> {
    let px = pixels(spec);
    let mut out = Vec::with_capacity(px.len() / 4);
    match spec.format {
        ImageFormat::Jpeg => {
            let (w, h) = (
                u16::try_from(spec.width).map_err(|_| "JPEG width above 65535")?,
                u16::try_from(spec.height).map_err(|_| "JPEG height above 65535")?,
            );
            jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY)
                .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| format!("synthetic image: JPEG: {e}"))?;
        }
        ImageFormat::Png => {
            let mut enc = png::Encoder::new(&mut out, spec.width, spec.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| format!("synthetic image: PNG: {e}"))?;
            w.write_image_data(&px)
                .map_err(|e| format!("synthetic image: PNG: {e}"))?;
            w.finish()
                .map_err(|e| format!("synthetic image: PNG: {e}"))?;
        }
    }
    Ok(out)
}

/// `spec` as a `data:` URL, and the encoded image's bytes (before base64).
pub fn data_url(spec: &SyntheticImage) -> Result<(String, usize), String> {
    let bytes = encode(spec)?;
    let mut url = String::with_capacity(bytes.len() * 4 / 3 + 32);
    url.push_str("data:");
    url.push_str(spec.format.mime());
    url.push_str(";base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut url);
    Ok((url, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: u32, h: u32, format: ImageFormat, seed: u64) -> SyntheticImage {
        SyntheticImage {
            width: w,
            height: h,
            format,
            seed,
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_image() {
        for f in [ImageFormat::Jpeg, ImageFormat::Png] {
            let a = encode(&spec(64, 48, f, 1)).unwrap();
            assert_eq!(a, encode(&spec(64, 48, f, 1)).unwrap());
            assert_ne!(a, encode(&spec(64, 48, f, 2)).unwrap());
        }
        // pinned: the pixels must not drift between versions or machines
        let px = pixels(&spec(7, 5, ImageFormat::Png, 42));
        assert_eq!(px.len(), 7 * 5 * 3);
        let sum: u64 = px.iter().map(|&b| u64::from(b)).sum();
        let fnv = px.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((sum, fnv), (14_686, 0x2dff_4bd0_2925_8b95));
        assert_eq!(&px[..6], &[205, 113, 153, 210, 126, 157]);
    }

    #[test]
    fn decodes_to_the_asked_size() {
        let png_bytes = encode(&spec(300, 200, ImageFormat::Png, 9)).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(&png_bytes));
        let r = dec.read_info().unwrap();
        assert_eq!((r.info().width, r.info().height), (300, 200));
        let jpg = encode(&spec(300, 200, ImageFormat::Jpeg, 9)).unwrap();
        assert_eq!(&jpg[..2], &[0xFF, 0xD8], "JPEG SOI");
        // SOF0 carries height then width
        let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let h = u16::from_be_bytes([jpg[sof + 5], jpg[sof + 6]]);
        let w = u16::from_be_bytes([jpg[sof + 7], jpg[sof + 8]]);
        assert_eq!((w, h), (300, 200));
        let (url, n) = data_url(&spec(300, 200, ImageFormat::Jpeg, 9)).unwrap();
        assert!(url.starts_with("data:image/jpeg;base64,/9j/"));
        assert_eq!(n, jpg.len());
    }
}
