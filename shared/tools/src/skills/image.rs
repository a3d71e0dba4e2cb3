//! The `image` skill: information, resizing, conversion and thumbnails of PNG and JPEG files
//! of the project (the `image` crate with only those two codecs).
//!
//! Images are untrusted input: the file is at most 10 MB ([`crate::files::read_bytes`]), the
//! decoder refuses images larger than [`MAX_SIDE`] pixels a side or needing more than
//! [`MAX_ALLOC`] bytes (a small PNG can declare a huge canvas), outputs are at most
//! [`MAX_OUTPUT_SIDE`] a side, and decoding runs on a blocking thread under the tool's timeout.
//! Paths are confined to the project root; outputs are written like the filesystem skill's
//! (never through a symlink, never in `.git`).

use std::io::Cursor;
use std::time::Duration;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader};
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::files::{self, WriteMode};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "image";
const MAX_SIDE: u32 = 16_384;
const MAX_ALLOC: u64 = 512 * 1024 * 1024;
const MAX_OUTPUT_SIDE: u32 = 8192;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Image, description).timeout(Duration::from_secs(60))
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let path = json!({"type": "string", "minLength": 1, "maxLength": 4096});
    let output = json!({"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "(?i)\\.(png|jpe?g)$"});
    let side = json!({"type": "integer", "minimum": 1, "maximum": MAX_OUTPUT_SIDE});
    let quality = json!({"type": "integer", "minimum": 1, "maximum": 100});
    reg.register(
        def(
            "image_info",
            "Format, width, height and colour type of a PNG or JPEG file",
        )
        .permissions(&[Permission::Read])
        .schema(json!({
            "type": "object",
            "properties": {"path": path},
            "required": ["path"],
            "additionalProperties": false,
        }))
        .output("{path, format, width, height, color_type, has_alpha, bytes}"),
        image_info,
    )?;
    reg.register(
        def("image_resize", "Resize an image to a width and/or height (keeping the aspect ratio unless exact), written to output (PNG or JPEG by its extension)")
            .permissions(&[Permission::Read, Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path, "output": output, "width": side, "height": side,
                    "exact": {"type": "boolean"}, "quality": quality, "overwrite": {"type": "boolean"},
                },
                "required": ["path", "output"],
                "anyOf": [{"required": ["width"]}, {"required": ["height"]}],
                "additionalProperties": false,
            }))
            .output("{path, format, width, height, bytes}"),
        image_resize,
    )?;
    reg.register(
        def("image_convert", "Convert an image between PNG and JPEG (by the output's extension; JPEG quality 1-100)")
            .permissions(&[Permission::Read, Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {"path": path, "output": output, "quality": quality, "overwrite": {"type": "boolean"}},
                "required": ["path", "output"],
                "additionalProperties": false,
            }))
            .output("{path, format, width, height, bytes}"),
        image_convert,
    )?;
    reg.register(
        def(
            "image_thumbnail",
            "A thumbnail that fits in a square of max_size pixels (default 256), written to output",
        )
        .permissions(&[Permission::Read, Permission::Write])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": path, "output": output,
                "max_size": {"type": "integer", "minimum": 8, "maximum": 1024},
                "overwrite": {"type": "boolean"},
            },
            "required": ["path", "output"],
            "additionalProperties": false,
        }))
        .output("{path, format, width, height, bytes}"),
        image_thumbnail,
    )?;
    Ok(())
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ToolError> {
    let mut r = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ToolError::InvalidInput(format!("cannot read the image: {e}")))?;
    match r.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        _ => {
            return Err(ToolError::InvalidInput("not a PNG or JPEG image".into()));
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    r.limits(limits);
    Ok(r)
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, ToolError> {
    reader(bytes)?.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => ToolError::TooLarge(format!("image too large: {l}")),
        other => ToolError::InvalidInput(format!("cannot decode the image: {other}")),
    })
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
        _ => "other",
    }
}

/// Encodes `img` as the format `output`'s extension names.
fn encode(
    img: &DynamicImage,
    output: &str,
    quality: Option<u8>,
) -> Result<(Vec<u8>, ImageFormat), ToolError> {
    let lower = output.to_ascii_lowercase();
    let mut buf = Vec::new();
    let fail = |e: image::ImageError| ToolError::Failed(format!("cannot encode the image: {e}"));
    if lower.ends_with(".png") {
        img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png)
            .map_err(fail)?;
        Ok((buf, ImageFormat::Png))
    } else {
        // JPEG has no alpha channel.
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        JpegEncoder::new_with_quality(&mut buf, quality.unwrap_or(85))
            .encode_image(&rgb)
            .map_err(fail)?;
        Ok((buf, ImageFormat::Jpeg))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::Failed(format!("image work failed: {e}")))?
}

#[derive(Deserialize)]
struct InfoInput {
    path: String,
}

async fn image_info(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: InfoInput = parse(input)?;
    let root = ctx.root()?;
    let (abs, bytes) = files::read_bytes(root, &i.path).await?;
    let len = bytes.len();
    let (format, (w, h), color) = blocking(move || {
        let r = reader(&bytes)?;
        let format = r.format().map_or("other", format_name);
        // The colour type needs the decoder's header, not the pixels.
        let decoder = r
            .into_decoder()
            .map_err(|e| ToolError::InvalidInput(format!("cannot read the image: {e}")))?;
        use image::ImageDecoder;
        Ok((format, decoder.dimensions(), decoder.color_type()))
    })
    .await?;
    Ok(ToolOutput::ok(
        format!("{format} image, {w}×{h}"),
        json!({
            "path": root.relative(&abs),
            "format": format,
            "width": w,
            "height": h,
            "color_type": format!("{color:?}"),
            "has_alpha": color.has_alpha(),
            "bytes": len,
        }),
    ))
}

/// Reads `path`, transforms it, writes `output`.
async fn transform(
    ctx: &CallContext,
    path: &str,
    output: &str,
    overwrite: bool,
    quality: Option<u8>,
    f: impl FnOnce(DynamicImage) -> DynamicImage + Send + 'static,
) -> Result<ToolOutput, ToolError> {
    let root = ctx.root()?;
    let (_, bytes) = files::read_bytes(root, path).await?;
    let out_name = output.to_owned();
    let (encoded, format, w, h) = blocking(move || {
        let img = f(decode(&bytes)?);
        let (w, h) = (img.width(), img.height());
        let (encoded, format) = encode(&img, &out_name, quality)?;
        Ok((encoded, format, w, h))
    })
    .await?;
    let mode = if overwrite {
        WriteMode::Overwrite
    } else {
        WriteMode::Create
    };
    let written = files::write(root, output, &encoded, mode, true).await?;
    Ok(ToolOutput::ok(
        format!("Wrote {} ({}, {w}×{h})", written.rel, format_name(format)),
        json!({"path": written.rel, "format": format_name(format), "width": w, "height": h, "bytes": encoded.len()}),
    ))
}

#[derive(Deserialize)]
struct ResizeInput {
    path: String,
    output: String,
    width: Option<u32>,
    height: Option<u32>,
    exact: Option<bool>,
    quality: Option<u8>,
    overwrite: Option<bool>,
}

async fn image_resize(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ResizeInput = parse(input)?;
    let exact = i.exact.unwrap_or(false);
    let (w, h) = (i.width, i.height);
    transform(
        &ctx,
        &i.path,
        &i.output,
        i.overwrite.unwrap_or(false),
        i.quality,
        move |img| {
            let ratio = f64::from(img.width()) / f64::from(img.height().max(1));
            // A missing side follows from the other and the aspect ratio.
            let tw = w.unwrap_or_else(|| {
                ((f64::from(h.unwrap_or(1)) * ratio).round() as u32).clamp(1, MAX_OUTPUT_SIDE)
            });
            let th = h.unwrap_or_else(|| {
                ((f64::from(tw) / ratio).round() as u32).clamp(1, MAX_OUTPUT_SIDE)
            });
            if exact || w.is_none() || h.is_none() {
                img.resize_exact(tw, th, FilterType::Lanczos3)
            } else {
                img.resize(tw, th, FilterType::Lanczos3)
            }
        },
    )
    .await
}

#[derive(Deserialize)]
struct ConvertInput {
    path: String,
    output: String,
    quality: Option<u8>,
    overwrite: Option<bool>,
}

async fn image_convert(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ConvertInput = parse(input)?;
    transform(
        &ctx,
        &i.path,
        &i.output,
        i.overwrite.unwrap_or(false),
        i.quality,
        |img| img,
    )
    .await
}

#[derive(Deserialize)]
struct ThumbInput {
    path: String,
    output: String,
    max_size: Option<u32>,
    overwrite: Option<bool>,
}

async fn image_thumbnail(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ThumbInput = parse(input)?;
    let side = i.max_size.unwrap_or(256);
    transform(
        &ctx,
        &i.path,
        &i.output,
        i.overwrite.unwrap_or(false),
        None,
        move |img| img.thumbnail(side, side),
    )
    .await
}
