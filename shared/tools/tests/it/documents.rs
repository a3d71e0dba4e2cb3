//! The pdf and image skills on real files in a temporary project.

use std::io::Cursor;

use serde_json::json;

use crate::helpers::{TempDir, ctx, toolbox};

#[tokio::test]
async fn pdf_create_info_read_search() {
    let dir = TempDir::new();
    let tb = toolbox("");
    let text: String = (1..=70).map(|i| format!("Row {i}: alpha beta\n")).collect();
    let r = tb
        .execute(
            "pdf_create",
            json!({"path": "out/report.pdf", "text": format!("Annual Report\n{text}Needle in page two"), "title": "Annual"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.data["pages"].as_u64(), r.data["created"].as_bool()),
        (Some(2), Some(true))
    );
    let again = tb
        .execute(
            "pdf_create",
            json!({"path": "out/report.pdf", "text": "x"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(
        again.error.as_deref(),
        Some("invalid_input"),
        "no overwrite without asking: {again:?}"
    );

    let r = tb
        .execute(
            "pdf_info",
            json!({"path": "out/report.pdf"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.data["pages"].as_u64(), r.data["title"].as_str()),
        (Some(2), Some("Annual"))
    );

    let r = tb
        .execute(
            "pdf_read",
            json!({"path": "out/report.pdf", "first_page": 2}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    let pages = r.data["pages"].as_array().unwrap();
    assert_eq!((pages.len(), pages[0]["page"].as_u64()), (1, Some(2)));
    assert!(
        pages[0]["text"]
            .as_str()
            .unwrap()
            .contains("Needle in page two")
    );
    assert!(!pages[0]["text"].as_str().unwrap().contains("Annual Report"));

    let r = tb
        .execute(
            "pdf_search",
            json!({"path": "out/report.pdf", "query": "NEEDLE"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(
        r.data["matches"],
        json!([{"page": 2, "line": "Needle in page two"}]),
        "{r:?}"
    );
    let r = tb
        .execute(
            "pdf_search",
            json!({"path": "out/report.pdf", "query": "alpha", "max_matches": 3}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(
        (
            r.data["matches"].as_array().unwrap().len(),
            r.data["truncated"].as_bool()
        ),
        (3, Some(true))
    );

    // Not a PDF, a path outside the root, a missing file.
    dir.write("fake.pdf", "hello");
    let r = tb
        .execute("pdf_info", json!({"path": "fake.pdf"}), &ctx(Some(&dir)))
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    let r = tb
        .execute(
            "pdf_read",
            json!({"path": "../etc/passwd"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    let r = tb
        .execute("pdf_read", json!({"path": "nope.pdf"}), &ctx(Some(&dir)))
        .await;
    assert_eq!(r.error.as_deref(), Some("not_found"), "{r:?}");
    let r = tb
        .execute(
            "pdf_create",
            json!({"path": "a.txt", "text": "x"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"), "{r:?}");
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 200])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn image_info_resize_convert_thumbnail() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("pic.png"), png(400, 200)).unwrap();
    let tb = toolbox("");
    let r = tb
        .execute("image_info", json!({"path": "pic.png"}), &ctx(Some(&dir)))
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (
            r.data["format"].as_str(),
            r.data["width"].as_u64(),
            r.data["height"].as_u64(),
            r.data["has_alpha"].as_bool()
        ),
        (Some("png"), Some(400), Some(200), Some(true))
    );

    let r = tb
        .execute(
            "image_resize",
            json!({"path": "pic.png", "output": "small.png", "width": 100}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.data["width"].as_u64(), r.data["height"].as_u64()),
        (Some(100), Some(50)),
        "aspect kept"
    );
    let r = tb
        .execute("image_resize", json!({"path": "pic.png", "output": "sq.png", "width": 30, "height": 30, "exact": true}), &ctx(Some(&dir)))
        .await;
    assert_eq!(
        (r.data["width"].as_u64(), r.data["height"].as_u64()),
        (Some(30), Some(30))
    );

    let r = tb
        .execute(
            "image_convert",
            json!({"path": "pic.png", "output": "pic.jpg", "quality": 70}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    let jpg = std::fs::read(dir.path().join("pic.jpg")).unwrap();
    assert_eq!(&jpg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG file");
    let r = tb
        .execute("image_info", json!({"path": "pic.jpg"}), &ctx(Some(&dir)))
        .await;
    assert_eq!(
        (r.data["format"].as_str(), r.data["has_alpha"].as_bool()),
        (Some("jpeg"), Some(false))
    );

    let r = tb
        .execute(
            "image_thumbnail",
            json!({"path": "pic.jpg", "output": "thumbs/t.png", "max_size": 64}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.data["width"].as_u64(), r.data["height"].as_u64()),
        (Some(64), Some(32))
    );

    // Refusals: existing output, bad output type, not an image, outside the root, a canvas
    // larger than the decoder accepts.
    let r = tb
        .execute(
            "image_convert",
            json!({"path": "pic.png", "output": "pic.jpg"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    let r = tb
        .execute(
            "image_convert",
            json!({"path": "pic.png", "output": "pic.gif"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"), "{r:?}");
    dir.write("not.png", "text");
    let r = tb
        .execute("image_info", json!({"path": "not.png"}), &ctx(Some(&dir)))
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    let r = tb
        .execute(
            "image_resize",
            json!({"path": "pic.png", "output": "../x.png", "width": 5}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    // A PNG header that declares 20000 × 20000 pixels.
    let mut huge = png(1, 1);
    huge[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    std::fs::write(dir.path().join("huge.png"), huge).unwrap();
    let r = tb
        .execute(
            "image_thumbnail",
            json!({"path": "huge.png", "output": "h.png"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(!r.success, "{r:?}");
    assert!(!dir.path().join("h.png").exists());
}
