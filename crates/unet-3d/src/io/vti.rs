//! VTK XML ImageData (`.vti`), e.g. pyvista's `frog_tissues.vti`.
//!
//! Supported: `WholeExtent`, `Spacing`, one `Piece`, `PointData` and `CellData` arrays with
//! one component of type (U)Int8/16/32/64 and Float32/64; `format="ascii"`, `"binary"`
//! (base64 with a `UInt32` or `UInt64` size header per `header_type`) and `"appended"`
//! (`encoding="raw"` or `"base64"`); `compressor="vtkZLibDataCompressor"` blocks
//! (`[nblocks, block_size, last_block_size, compressed sizes…]` then zlib streams).
//! Base64 headers encoded either separately from the data (as VTK does for compressed
//! arrays) or together with it (as VTK does for uncompressed ones) are both accepted.
//! `Origin` and `Direction` are not kept in the returned [`Volume`](crate::Volume).
//! The XML is parsed by hand (attributes, tags, text); entities are not expanded.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::{read_file, write_atomic, Error3d, Result};
use crate::volume::{decode_volume, encode_le, voxel_count, AnyVolume, Scalar};

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Which encoding [`write_vti`] uses for the data array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VtiFormat {
    /// `format="ascii"`.
    Ascii,
    /// `format="binary"`, base64, uncompressed (header and data in one base64 stream).
    #[default]
    Binary,
    /// `format="binary"` with `vtkZLibDataCompressor` blocks of `block_size` bytes.
    BinaryZlib {
        /// Uncompressed block size in bytes (VTK uses 32768).
        block_size: usize,
    },
}

/// Where a data array was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtiLocation {
    /// `<PointData>`: one value per grid point.
    Point,
    /// `<CellData>`: one value per cell.
    Cell,
}

/// Description of one data array of a `.vti` file.
#[derive(Debug, Clone, PartialEq)]
pub struct VtiArrayInfo {
    /// The `Name` attribute.
    pub name: String,
    /// The VTK type name (`UInt8`, `Float32`, …).
    pub vtk_type: String,
    /// `NumberOfComponents` (1 when absent).
    pub components: usize,
    /// Point or cell data.
    pub location: VtiLocation,
    /// True when the section's `Scalars` attribute names this array.
    pub is_active_scalars: bool,
}

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: HashMap<String, String>,
    closing: bool,
    self_closing: bool,
    /// Byte range of the tag in the document.
    end: usize,
}

fn parse_attrs(s: &str, path: &Path) -> Result<HashMap<String, String>> {
    let mut attrs = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| Error3d::format(path, format!("bad XML attributes `{s}`")))?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| Error3d::format(path, format!("unquoted XML attribute `{key}`")))?;
        let close = after[1..]
            .find(quote)
            .ok_or_else(|| Error3d::format(path, "unterminated XML attribute"))?;
        attrs.insert(key, after[1..1 + close].to_string());
        rest = after[close + 2..].trim_start();
    }
    Ok(attrs)
}

/// Next tag at or after `pos` in `doc`, skipping `<?…?>` and `<!--…-->`.
fn next_tag(doc: &str, mut pos: usize, path: &Path) -> Result<Option<(usize, Tag)>> {
    loop {
        let Some(lt) = doc[pos..].find('<').map(|i| i + pos) else {
            return Ok(None);
        };
        let rest = &doc[lt..];
        let skip_to = |pat: &str| {
            rest.find(pat)
                .map(|i| lt + i + pat.len())
                .ok_or_else(|| Error3d::format(path, "unterminated XML construct"))
        };
        if rest.starts_with("<?") {
            pos = skip_to("?>")?;
            continue;
        }
        if rest.starts_with("<!--") {
            pos = skip_to("-->")?;
            continue;
        }
        let gt = rest.find('>').ok_or_else(|| Error3d::format(path, "truncated XML tag"))?;
        let mut inner = &rest[1..gt];
        let closing = inner.starts_with('/');
        if closing {
            inner = &inner[1..];
        }
        let self_closing = inner.ends_with('/');
        if self_closing {
            inner = &inner[..inner.len() - 1];
        }
        let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let tag = Tag {
            name: inner[..name_end].to_string(),
            attrs: parse_attrs(&inner[name_end..], path)?,
            closing,
            self_closing,
            end: lt + gt + 1,
        };
        return Ok(Some((lt, tag)));
    }
}

#[derive(Debug)]
struct ArrayDesc {
    info: VtiArrayInfo,
    attrs: HashMap<String, String>,
    /// Inline text content (ascii or base64).
    text: String,
}

struct Doc<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    big: bool,
    header64: bool,
    compressed: bool,
    whole: [i64; 6],
    spacing: [f64; 3],
    arrays: Vec<ArrayDesc>,
    /// Start of appended data (the byte after `_`) and its encoding (`true` = base64).
    appended: Option<(usize, bool)>,
}

fn parse_doc<'a>(bytes: &'a [u8], path: &'a Path) -> Result<Doc<'a>> {
    // The XML part ends where raw appended data starts.
    let app_tag = find(bytes, b"<AppendedData");
    let xml_end = app_tag.unwrap_or(bytes.len());
    let doc = std::str::from_utf8(&bytes[..xml_end])
        .map_err(|_| Error3d::format(path, "XML part is not UTF-8"))?;
    let mut pos = 0;
    let mut vtk: Option<HashMap<String, String>> = None;
    let mut image: Option<HashMap<String, String>> = None;
    let mut pieces = 0;
    let mut section: Option<(VtiLocation, Option<String>)> = None;
    let mut arrays = Vec::new();
    while let Some((start, tag)) = next_tag(doc, pos, path)? {
        pos = tag.end;
        match (tag.name.as_str(), tag.closing) {
            ("VTKFile", false) => vtk = Some(tag.attrs),
            ("ImageData", false) => image = Some(tag.attrs),
            ("Piece", false) => {
                pieces += 1;
                if pieces > 1 {
                    return Err(Error3d::format(path, "multi-piece ImageData is not supported"));
                }
            }
            ("PointData", false) | ("CellData", false) if !tag.self_closing => {
                let loc =
                    if tag.name == "PointData" { VtiLocation::Point } else { VtiLocation::Cell };
                section = Some((loc, tag.attrs.get("Scalars").cloned()));
            }
            ("PointData", true) | ("CellData", true) => section = None,
            ("DataArray", false) => {
                let Some((loc, scalars)) = &section else {
                    continue; // e.g. arrays of FieldData
                };
                let text = if tag.self_closing {
                    String::new()
                } else {
                    let close = doc[tag.end..]
                        .find("</DataArray>")
                        .ok_or_else(|| Error3d::format(path, "truncated: no </DataArray>"))?;
                    let t = doc[tag.end..tag.end + close].to_string();
                    pos = tag.end + close;
                    t
                };
                let name = tag.attrs.get("Name").cloned().unwrap_or_default();
                let vtk_type = tag
                    .attrs
                    .get("type")
                    .cloned()
                    .ok_or_else(|| Error3d::format(path, "DataArray without type"))?;
                let components = match tag.attrs.get("NumberOfComponents") {
                    Some(c) => {
                        c.parse().map_err(|_| Error3d::format(path, "bad NumberOfComponents"))?
                    }
                    None => 1,
                };
                arrays.push(ArrayDesc {
                    info: VtiArrayInfo {
                        is_active_scalars: scalars.as_deref() == Some(name.as_str()),
                        name,
                        vtk_type,
                        components,
                        location: *loc,
                    },
                    attrs: tag.attrs,
                    text,
                });
            }
            _ => {}
        }
        let _ = start;
    }
    let vtk = vtk.ok_or_else(|| Error3d::format(path, "bad magic: no <VTKFile> element"))?;
    if vtk.get("type").map(String::as_str) != Some("ImageData") {
        return Err(Error3d::format(path, "VTKFile type is not ImageData"));
    }
    let image = image.ok_or_else(|| Error3d::format(path, "no <ImageData> element"))?;
    let big = match vtk.get("byte_order").map(String::as_str) {
        None | Some("LittleEndian") => false,
        Some("BigEndian") => true,
        Some(o) => return Err(Error3d::format(path, format!("unknown byte_order `{o}`"))),
    };
    let header64 = match vtk.get("header_type").map(String::as_str) {
        None | Some("UInt32") => false,
        Some("UInt64") => true,
        Some(h) => return Err(Error3d::format(path, format!("unknown header_type `{h}`"))),
    };
    let compressed = match vtk.get("compressor").map(String::as_str) {
        None | Some("") => false,
        Some("vtkZLibDataCompressor") => true,
        Some(c) => return Err(Error3d::format(path, format!("unsupported compressor `{c}`"))),
    };
    let nums = |key: &str, n: usize| -> Result<Vec<f64>> {
        let s = image
            .get(key)
            .ok_or_else(|| Error3d::format(path, format!("ImageData lacks {key}")))?;
        let v: Vec<f64> = s
            .split_whitespace()
            .map(|t| t.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error3d::format(path, format!("bad {key} `{s}`")))?;
        if v.len() != n || v.iter().any(|x| !x.is_finite()) {
            return Err(Error3d::format(path, format!("bad {key} `{s}`")));
        }
        Ok(v)
    };
    let we = nums("WholeExtent", 6)?;
    let mut whole = [0i64; 6];
    for (w, v) in whole.iter_mut().zip(&we) {
        if v.fract() != 0.0 {
            return Err(Error3d::format(path, "non-integer WholeExtent"));
        }
        *w = *v as i64;
    }
    for a in 0..3 {
        if whole[2 * a + 1] < whole[2 * a] {
            return Err(Error3d::format(path, "inverted WholeExtent"));
        }
    }
    let spacing = if image.contains_key("Spacing") {
        let s = nums("Spacing", 3)?;
        [s[0], s[1], s[2]]
    } else {
        [1.0; 3]
    };
    let appended = match app_tag {
        Some(t) => {
            let gt = find(&bytes[t..], b">")
                .ok_or_else(|| Error3d::format(path, "truncated <AppendedData> tag"))?;
            let head = std::str::from_utf8(&bytes[t + 13..t + gt])
                .map_err(|_| Error3d::format(path, "bad <AppendedData> tag"))?;
            let attrs = parse_attrs(head.trim_end_matches('/'), path)?;
            let b64 = match attrs.get("encoding").map(String::as_str) {
                Some("raw") => false,
                Some("base64") | None => true,
                Some(e) => {
                    return Err(Error3d::format(path, format!("unknown appended encoding `{e}`")))
                }
            };
            let us = find(&bytes[t + gt..], b"_")
                .ok_or_else(|| Error3d::format(path, "appended data lacks `_` marker"))?;
            Some((t + gt + us + 1, b64))
        }
        None => None,
    };
    Ok(Doc { path, bytes, big, header64, compressed, whole, spacing, arrays, appended })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn scalar_of(t: &str) -> Option<Scalar> {
    Some(match t {
        "Int8" | "Char" => Scalar::I8,
        "UInt8" | "UnsignedChar" => Scalar::U8,
        "Int16" | "Short" => Scalar::I16,
        "UInt16" | "UnsignedShort" => Scalar::U16,
        "Int32" | "Int" => Scalar::I32,
        "UInt32" | "UnsignedInt" => Scalar::U32,
        "Int64" | "Long" | "LongLong" | "IdType" => Scalar::I64,
        "UInt64" | "UnsignedLong" | "UnsignedLongLong" => Scalar::U64,
        "Float32" | "Float" => Scalar::F32,
        "Float64" | "Double" => Scalar::F64,
        _ => return None,
    })
}

fn vtk_name(s: Scalar) -> &'static str {
    match s {
        Scalar::I8 => "Int8",
        Scalar::U8 => "UInt8",
        Scalar::I16 => "Int16",
        Scalar::U16 => "UInt16",
        Scalar::I32 => "Int32",
        Scalar::U32 => "UInt32",
        Scalar::I64 => "Int64",
        Scalar::U64 => "UInt64",
        Scalar::F32 => "Float32",
        Scalar::F64 => "Float64",
    }
}

impl Doc<'_> {
    fn fmt_err(&self, why: impl Into<String>) -> Error3d {
        Error3d::format(self.path, why)
    }

    fn word(&self, b: &[u8]) -> u64 {
        let hs = if self.header64 { 8 } else { 4 };
        let mut a = [0u8; 8];
        if self.big {
            a[8 - hs..].copy_from_slice(&b[..hs]);
            u64::from_be_bytes(a)
        } else {
            a[..hs].copy_from_slice(&b[..hs]);
            u64::from_le_bytes(a)
        }
    }

    fn hs(&self) -> usize {
        if self.header64 {
            8
        } else {
            4
        }
    }

    fn b64(&self, s: &[u8]) -> Result<Vec<u8>> {
        B64.decode(s).map_err(|e| self.fmt_err(format!("bad base64 data: {e}")))
    }

    /// Reads header words then payload from a base64 character stream.
    fn decode_base64(&self, s: &[u8]) -> Result<Vec<u8>> {
        let hs = self.hs();
        let c4 = |n: usize| n.div_ceil(3) * 4;
        let first = s.get(..c4(hs)).ok_or_else(|| self.fmt_err("truncated base64 array header"))?;
        let first = self.b64(first)?;
        if first.len() < hs {
            return Err(self.fmt_err("truncated base64 array header"));
        }
        let nwords = if self.compressed {
            usize::try_from(self.word(&first))
                .ok()
                .and_then(|n| n.checked_add(3))
                .ok_or_else(|| self.fmt_err("bad block count"))?
        } else {
            1
        };
        let h = nwords
            .checked_mul(hs)
            .filter(|&h| h <= s.len())
            .ok_or_else(|| self.fmt_err("truncated base64 array header"))?;
        let hc = c4(h);
        let hchars = s.get(..hc).ok_or_else(|| self.fmt_err("truncated base64 array header"))?;
        let header = self.b64(hchars)?;
        if header.len() < h {
            return Err(self.fmt_err("truncated base64 array header"));
        }
        let words: Vec<u64> = (0..nwords).map(|i| self.word(&header[i * hs..])).collect();
        let data_len = if self.compressed {
            words[3..].iter().try_fold(0u64, |a, &w| a.checked_add(w))
        } else {
            Some(words[0])
        }
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= s.len())
        .ok_or_else(|| self.fmt_err("array size exceeds the file"))?;
        let split = h % 3 == 0 || hchars.last() == Some(&b'=');
        let payload = if split {
            let d = s
                .get(hc..hc + c4(data_len))
                .ok_or_else(|| self.fmt_err("truncated base64 array data"))?;
            let mut p = self.b64(d)?;
            p.truncate(data_len);
            p
        } else {
            let d = s
                .get(..c4(h + data_len))
                .ok_or_else(|| self.fmt_err("truncated base64 array data"))?;
            let mut p = self.b64(d)?;
            p.truncate(h + data_len);
            p.split_off(h.min(p.len()))
        };
        if payload.len() != data_len {
            return Err(self.fmt_err("truncated base64 array data"));
        }
        self.unpack(&words, &payload)
    }

    /// Reads header words then payload from raw appended bytes.
    fn decode_raw(&self, b: &[u8]) -> Result<Vec<u8>> {
        let hs = self.hs();
        let trunc = || self.fmt_err("truncated appended data");
        let first = b.get(..hs).ok_or_else(trunc)?;
        let nwords = if self.compressed {
            usize::try_from(self.word(first))
                .ok()
                .and_then(|n| n.checked_add(3))
                .ok_or_else(trunc)?
        } else {
            1
        };
        let h = nwords.checked_mul(hs).ok_or_else(trunc)?;
        let header = b.get(..h).ok_or_else(trunc)?;
        let words: Vec<u64> = (0..nwords).map(|i| self.word(&header[i * hs..])).collect();
        let data_len = if self.compressed {
            words[3..].iter().try_fold(0u64, |a, &w| a.checked_add(w))
        } else {
            Some(words[0])
        }
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(trunc)?;
        let payload = b.get(h..h.checked_add(data_len).ok_or_else(trunc)?).ok_or_else(trunc)?;
        self.unpack(&words, payload)
    }

    /// Uncompresses `payload` when needed (`words` is the header).
    fn unpack(&self, words: &[u64], payload: &[u8]) -> Result<Vec<u8>> {
        if !self.compressed {
            return Ok(payload.to_vec());
        }
        let nb = words.len() - 3;
        let (bs, last) = (words[1], words[2]);
        let mut out = Vec::new();
        let mut off = 0usize;
        for i in 0..nb {
            let cs = usize::try_from(words[3 + i]).unwrap_or(usize::MAX);
            let end =
                off.checked_add(cs).ok_or_else(|| self.fmt_err("bad compressed block size"))?;
            let block =
                payload.get(off..end).ok_or_else(|| self.fmt_err("truncated compressed block"))?;
            off = end;
            let expect = if i + 1 == nb && last != 0 { last } else { bs };
            let before = out.len();
            flate2::read::ZlibDecoder::new(block)
                .take(expect.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| self.fmt_err(format!("corrupt zlib block {i}: {e}")))?;
            if (out.len() - before) as u64 != expect {
                return Err(self.fmt_err(format!(
                    "zlib block {i} gave {} bytes, {expect} expected",
                    out.len() - before
                )));
            }
        }
        Ok(out)
    }

    fn dims(&self, loc: VtiLocation) -> Result<[usize; 3]> {
        let mut d = [0usize; 3];
        for (a, da) in d.iter_mut().enumerate() {
            let span = self.whole[2 * a + 1]
                .checked_sub(self.whole[2 * a])
                .ok_or_else(|| self.fmt_err("bad extent"))?;
            let n = match loc {
                VtiLocation::Point => span.saturating_add(1),
                VtiLocation::Cell => span.max(1),
            };
            *da = usize::try_from(n).map_err(|_| self.fmt_err("bad extent"))?;
        }
        Ok(d)
    }

    fn decode(&self, a: &ArrayDesc) -> Result<AnyVolume> {
        let scalar = scalar_of(&a.info.vtk_type)
            .ok_or_else(|| self.fmt_err(format!("unknown DataArray type `{}`", a.info.vtk_type)))?;
        if a.info.components != 1 {
            return Err(self.fmt_err(format!(
                "array `{}` has {} components (only scalars)",
                a.info.name, a.info.components
            )));
        }
        let dims = self.dims(a.info.location)?;
        let n = voxel_count(dims).ok_or_else(|| self.fmt_err("dims overflow"))?;
        let need = n.checked_mul(scalar.size()).ok_or_else(|| self.fmt_err("dims overflow"))?;
        let format = a.attrs.get("format").map(String::as_str).unwrap_or("ascii");
        let (bytes, big) = match format {
            "ascii" => (self.ascii(&a.text, scalar, n)?, false),
            "binary" => {
                let s: Vec<u8> = a.text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
                (self.decode_base64(&s)?, self.big)
            }
            "appended" => {
                let (start, b64) = self
                    .appended
                    .ok_or_else(|| self.fmt_err("appended array but no <AppendedData>"))?;
                let off: usize = a
                    .attrs
                    .get("offset")
                    .and_then(|o| o.trim().parse().ok())
                    .ok_or_else(|| self.fmt_err("appended array without a valid offset"))?;
                let rest = self
                    .bytes
                    .get(start.saturating_add(off)..)
                    .ok_or_else(|| self.fmt_err("appended offset beyond the file"))?;
                let v = if b64 {
                    let s: Vec<u8> = rest
                        .iter()
                        .copied()
                        .take_while(|&c| c != b'<')
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    self.decode_base64(&s)?
                } else {
                    self.decode_raw(rest)?
                };
                (v, self.big)
            }
            f => return Err(self.fmt_err(format!("unknown DataArray format `{f}`"))),
        };
        if bytes.len() != need {
            return Err(self.fmt_err(format!(
                "array `{}`: {} bytes, {need} expected for {dims:?} {}",
                a.info.name,
                bytes.len(),
                a.info.vtk_type
            )));
        }
        decode_volume(scalar, &bytes, big, dims, self.spacing)
            .map_err(|e| self.fmt_err(e.to_string()))
    }

    fn ascii(&self, text: &str, s: Scalar, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(text.len()) * s.size());
        let mut count = 0usize;
        for t in text.split_whitespace() {
            let bad = || self.fmt_err(format!("bad ascii value `{t}`"));
            macro_rules! p {
                ($ty:ty) => {
                    out.extend_from_slice(&t.parse::<$ty>().map_err(|_| bad())?.to_le_bytes())
                };
            }
            match s {
                Scalar::U8 => p!(u8),
                Scalar::I8 => p!(i8),
                Scalar::U16 => p!(u16),
                Scalar::I16 => p!(i16),
                Scalar::U32 => p!(u32),
                Scalar::I32 => p!(i32),
                Scalar::U64 => p!(u64),
                Scalar::I64 => p!(i64),
                Scalar::F32 => p!(f32),
                Scalar::F64 => p!(f64),
            }
            count += 1;
        }
        if count != n {
            return Err(self.fmt_err(format!("{count} ascii values, {n} expected")));
        }
        Ok(out)
    }
}

/// Lists the data arrays (point and cell data) of a `.vti` file.
pub fn list_vti_arrays(path: impl AsRef<Path>) -> Result<Vec<VtiArrayInfo>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    Ok(parse_doc(&bytes, path)?.arrays.into_iter().map(|a| a.info).collect())
}

/// Reads one scalar array of a `.vti` file as a volume: the one called `name`, or else the
/// active `Scalars` array, or else the first one-component array (point data first).
/// Cell data has `max(extent, 1)` voxels per axis; point data `extent + 1`.
pub fn read_vti(path: impl AsRef<Path>, name: Option<&str>) -> Result<AnyVolume> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_vti(&bytes, path, name)
}

/// Parses `.vti` bytes (see [`read_vti`]); `path` is only used in error messages.
pub fn parse_vti(bytes: &[u8], path: &Path, name: Option<&str>) -> Result<AnyVolume> {
    let doc = parse_doc(bytes, path)?;
    let chosen = match name {
        Some(n) => doc.arrays.iter().find(|a| a.info.name == n),
        None => doc
            .arrays
            .iter()
            .find(|a| a.info.is_active_scalars && a.info.components == 1)
            .or_else(|| doc.arrays.iter().find(|a| a.info.components == 1)),
    }
    .ok_or_else(|| match name {
        Some(n) => doc.fmt_err(format!("no data array named `{n}`")),
        None => doc.fmt_err("no scalar data array"),
    })?;
    doc.decode(chosen)
}

/// Serialises `vol` as a `.vti` with one point-data array `name` (origin 0, little endian,
/// `header_type="UInt32"`; `UInt64` when an array exceeds 4 GiB).
pub fn vti_bytes(vol: &AnyVolume, name: &str, format: VtiFormat) -> Vec<u8> {
    let (scalar, data) = encode_le(vol);
    let [x, y, z] = vol.dims();
    let [sx, sy, sz] = vol.spacing();
    let header64 = data.len() > u32::MAX as usize;
    let word = |v: usize| -> Vec<u8> {
        if header64 {
            (v as u64).to_le_bytes().to_vec()
        } else {
            (v as u32).to_le_bytes().to_vec()
        }
    };
    let compressor = match format {
        VtiFormat::BinaryZlib { .. } => " compressor=\"vtkZLibDataCompressor\"",
        _ => "",
    };
    let ext =
        format!("0 {} 0 {} 0 {}", x.saturating_sub(1), y.saturating_sub(1), z.saturating_sub(1));
    let fmt = if format == VtiFormat::Ascii { "ascii" } else { "binary" };
    let mut s = format!(
        "<?xml version=\"1.0\"?>\n<VTKFile type=\"ImageData\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"{}\"{compressor}>\n  <ImageData WholeExtent=\"{ext}\" Origin=\"0 0 0\" Spacing=\"{sx} {sy} {sz}\">\n  <Piece Extent=\"{ext}\">\n    <PointData Scalars=\"{name}\">\n      <DataArray type=\"{}\" Name=\"{name}\" format=\"{fmt}\">\n",
        if header64 { "UInt64" } else { "UInt32" },
        vtk_name(scalar)
    );
    match format {
        VtiFormat::Ascii => {
            let f = vol.to_f64();
            for (i, v) in f.data.iter().enumerate() {
                s.push_str(&match vol {
                    AnyVolume::F32(a) => a.data[i].to_string(),
                    AnyVolume::U64(a) => a.data[i].to_string(),
                    AnyVolume::I64(a) => a.data[i].to_string(),
                    _ => v.to_string(),
                });
                s.push(if i % 16 == 15 { '\n' } else { ' ' });
            }
            s.push('\n');
        }
        VtiFormat::Binary => {
            let mut raw = word(data.len());
            raw.extend_from_slice(&data);
            s.push_str(&B64.encode(&raw));
            s.push('\n');
        }
        VtiFormat::BinaryZlib { block_size } => {
            use std::io::Write;
            let bs = block_size.max(1);
            let blocks: Vec<Vec<u8>> = data
                .chunks(bs)
                .map(|c| {
                    let mut e =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    let _ = e.write_all(c);
                    e.finish().unwrap_or_default()
                })
                .collect();
            let last = if data.len() % bs == 0 { bs } else { data.len() % bs };
            let mut header = word(blocks.len());
            header.extend(word(bs));
            header.extend(word(if data.is_empty() { 0 } else { last }));
            for b in &blocks {
                header.extend(word(b.len()));
            }
            s.push_str(&B64.encode(&header));
            s.push_str(&B64.encode(blocks.concat()));
            s.push('\n');
        }
    }
    s.push_str("      </DataArray>\n    </PointData>\n  </Piece>\n  </ImageData>\n</VTKFile>\n");
    s.into_bytes()
}

/// Writes `vol` as a `.vti` atomically (see [`vti_bytes`]).
pub fn write_vti(
    path: impl AsRef<Path>,
    vol: &AnyVolume,
    name: &str,
    format: VtiFormat,
) -> Result<()> {
    write_atomic(path.as_ref(), &vti_bytes(vol, name, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Volume;

    fn sample() -> Vec<AnyVolume> {
        let v = Volume::from_vec([5, 3, 2], [0.5, 1.0, 1.5], (0..30u8).collect()).unwrap();
        vec![
            AnyVolume::U8(v.clone()),
            AnyVolume::I16(v.map(|x| x as i16 * -100)),
            AnyVolume::F32(v.map(|x| x as f32 / 3.0)),
            AnyVolume::F64(v.map(|x| x as f64 / 7.0)),
            AnyVolume::I64(v.map(|x| x as i64 - 9)),
        ]
    }

    #[test]
    fn roundtrip_all_formats() {
        let p = Path::new("t.vti");
        for v in sample() {
            for f in [
                VtiFormat::Ascii,
                VtiFormat::Binary,
                VtiFormat::BinaryZlib { block_size: 7 },
                VtiFormat::BinaryZlib { block_size: 32768 },
            ] {
                let b = vti_bytes(&v, "labels", f);
                assert_eq!(parse_vti(&b, p, None).unwrap(), v, "{f:?}");
                assert_eq!(parse_vti(&b, p, Some("labels")).unwrap(), v);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.vti");
        write_vti(&f, &sample()[0], "x", VtiFormat::default()).unwrap();
        assert_eq!(read_vti(&f, None).unwrap(), sample()[0]);
        assert_eq!(list_vti_arrays(&f).unwrap()[0].name, "x");
    }

    #[test]
    fn appended_raw_and_base64_cell_data() {
        // Two cell arrays (2×2×1 cells), the second selected by name; header_type UInt64.
        let a: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let b: Vec<u8> = vec![7, 8, 9, 10];
        let mut raw = Vec::new();
        raw.extend_from_slice(&(a.len() as u64).to_le_bytes());
        raw.extend_from_slice(&a);
        let off_b = raw.len();
        raw.extend_from_slice(&(b.len() as u64).to_le_bytes());
        raw.extend_from_slice(&b);
        let head = |enc: &str, ob: usize| {
            format!("<?xml version=\"1.0\"?>\n<VTKFile type=\"ImageData\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"UInt64\">\n<ImageData WholeExtent=\"0 2 0 2 0 0\" Origin=\"0 0 0\" Spacing=\"2 2 2\">\n<Piece Extent=\"0 2 0 2 0 0\">\n<PointData/>\n<CellData Scalars=\"f\">\n<DataArray type=\"Float32\" Name=\"f\" format=\"appended\" offset=\"0\"/>\n<DataArray type=\"UInt8\" Name=\"lab\" format=\"appended\" offset=\"{ob}\"/>\n</CellData>\n</Piece>\n</ImageData>\n<AppendedData encoding=\"{enc}\">\n_")
        };
        let mut file = head("raw", off_b).into_bytes();
        file.extend_from_slice(&raw);
        file.extend_from_slice(b"\n</AppendedData>\n</VTKFile>\n");
        let p = Path::new("app.vti");
        match parse_vti(&file, p, None).unwrap() {
            AnyVolume::F32(v) => {
                assert_eq!(v.dims, [2, 2, 1]);
                assert_eq!(v.data, vec![1.0, 2.0, 3.0, 4.0]);
            }
            o => panic!("{o:?}"),
        }
        let lab = parse_vti(&file, p, Some("lab")).unwrap();
        assert_eq!(lab.as_u8().unwrap().data, b);
        // Same arrays in appended base64 (each array one base64 stream).
        let e1 = B64.encode(&raw[..off_b]);
        let e2 = B64.encode(&raw[off_b..]);
        let mut file = head("base64", e1.len()).into_bytes();
        file.extend_from_slice(e1.as_bytes());
        file.extend_from_slice(e2.as_bytes());
        file.extend_from_slice(b"\n</AppendedData>\n</VTKFile>\n");
        assert_eq!(parse_vti(&file, p, Some("lab")).unwrap(), lab);
        assert!(parse_vti(&file, p, Some("nope")).is_err());
        // Truncated raw appended data.
        let mut t = head("raw", off_b).into_bytes();
        t.extend_from_slice(&raw[..raw.len() - 2]);
        assert!(matches!(parse_vti(&t, p, Some("lab")), Err(Error3d::Format { .. })));
    }

    #[test]
    fn corrupt() {
        let v = &sample()[0];
        let p = Path::new("bad.vti");
        let bin = String::from_utf8(vti_bytes(v, "s", VtiFormat::Binary)).unwrap();
        let z =
            String::from_utf8(vti_bytes(v, "s", VtiFormat::BinaryZlib { block_size: 8 })).unwrap();
        let asc = String::from_utf8(vti_bytes(v, "s", VtiFormat::Ascii)).unwrap();
        let cut = |s: &str, n: usize| s[..s.len() - n].to_string();
        let cases = vec![
            bin.replace("WholeExtent=\"0 4", "WholeExtent=\"0 5"), // size mismatch
            bin.replace("UInt8", "UInt9"),                         // unknown type
            bin.replace("VTKFile", "VTKFail"),                     // bad magic
            bin.replace("type=\"ImageData\"", "type=\"PolyData\""),
            cut(&bin, 120),                // truncated
            asc.replacen(" 3 ", " x ", 1), // bad ascii value
            asc.replacen(" 3 ", " ", 1),   // too few values
            z.replacen("</DataArray>", "AAAA</DataArray>", 1).replace("eJ", "eK"), // corrupt zlib
            bin.replace("header_type=\"UInt32\"", "header_type=\"UInt16\""),
        ];
        for c in cases {
            let e = parse_vti(c.as_bytes(), p, None).unwrap_err();
            assert!(
                matches!(e, Error3d::Format { .. }) && e.to_string().starts_with("bad.vti: "),
                "{e}"
            );
        }
    }
}
