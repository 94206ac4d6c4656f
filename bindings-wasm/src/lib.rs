//! imgest for JavaScript: type conversions and error mapping only. Every decision about images
//! lives in the `imgest` crate.
//!
//! The JavaScript entry points (`init`, `process`, `processSync`, `ImgestError`, `toBlob`) are in
//! `js/`; they wrap the raw exports below.

use imgest::{ErrorCode, Options, Output};
use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
mod shims;

/// Runs the pipeline on `input` with `options` (the core's snake_case wire format as a JSON
/// string; `undefined` for the defaults). Returns `{report, bytes}`: the core's `Output` as a
/// plain object (snake_case, `bytes` left out) and each variant's bytes as a fresh `Uint8Array`
/// (a copy, never a view into WASM memory), in variant order. Throws `{code, message, limit?}`.
#[wasm_bindgen(js_name = processRaw)]
pub fn process_raw(input: &[u8], options: Option<String>) -> Result<JsValue, JsValue> {
    let options = parse_options(options.as_deref())?;
    let output = imgest::process(input, &options).map_err(|e| to_js_error(&e))?;
    to_js(&output)
}

/// Validates, decodes, converts to sRGB and orients `input` without resizing or encoding:
/// `{width, height, data}` with `data` the RGBA pixels (a copy, 4 bytes per pixel).
#[wasm_bindgen(js_name = decodeRaw)]
pub fn decode_raw(input: &[u8], options: Option<String>) -> Result<JsValue, JsValue> {
    let options = parse_options(options.as_deref())?;
    let pipeline = imgest::Pipeline::new(options).map_err(|e| to_js_error(&e))?;
    let prepared = pipeline.prepare(input).map_err(|e| to_js_error(&e))?;
    let result = Object::new();
    Reflect::set(&result, &"width".into(), &prepared.image.width().into())?;
    Reflect::set(&result, &"height".into(), &prepared.image.height().into())?;
    let data = Uint8Array::from(prepared.image.as_raw().as_slice());
    Reflect::set(&result, &"data".into(), &data)?;
    Ok(result.into())
}

/// Every error code, as `{code, number}` objects in numeric order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Result<JsValue, JsValue> {
    let codes = Array::new();
    for c in ErrorCode::ALL {
        let obj = Object::new();
        Reflect::set(&obj, &"code".into(), &c.as_str().into())?;
        Reflect::set(&obj, &"number".into(), &c.as_u32().into())?;
        codes.push(&obj);
    }
    Ok(codes.into())
}

/// Every output format as `{format, mimeType, extension}` objects (the core's table).
#[wasm_bindgen(js_name = outputFormats)]
pub fn output_formats() -> Result<JsValue, JsValue> {
    let formats = Array::new();
    for f in imgest::OutputFormat::ALL {
        let obj = Object::new();
        Reflect::set(&obj, &"format".into(), &f.as_str().into())?;
        Reflect::set(&obj, &"mimeType".into(), &f.mime_type().into())?;
        Reflect::set(&obj, &"extension".into(), &f.extension().into())?;
        formats.push(&obj);
    }
    Ok(formats.into())
}

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    imgest::VERSION.to_string()
}

/// Parses the options' JSON with the core's parser, so that unknown keys and bad values are
/// refused exactly as in every other binding.
fn parse_options(json: Option<&str>) -> Result<Options, JsValue> {
    match json {
        None => Ok(Options::default()),
        Some(json) => Options::from_json(json).map_err(|e| to_js_error(&e)),
    }
}

/// `{code, message, limit?}`; the JS wrapper turns it into an `ImgestError`.
fn to_js_error(e: &imgest::Error) -> JsValue {
    let obj = Object::new();
    let set = |key: &str, value: JsValue| Reflect::set(&obj, &key.into(), &value).is_ok();
    let ok = set("code", e.code().as_str().into())
        && set("message", e.to_string().into())
        && e.limit()
            .is_none_or(|limit| set("limit", limit.as_str().into()));
    if ok {
        obj.into()
    } else {
        JsValue::from_str(&e.to_string())
    }
}

/// `{report, bytes}` (see [`process_raw`]); the JS wrapper gives the report camelCase keys and
/// `variants` keyed by name.
fn to_js(output: &Output) -> Result<JsValue, JsValue> {
    let report = output
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let bytes = Array::new();
    for v in &output.variants {
        bytes.push(&Uint8Array::from(&v.bytes[..]));
    }
    let result = Object::new();
    Reflect::set(&result, &"report".into(), &report)?;
    Reflect::set(&result, &"bytes".into(), &bytes)?;
    Ok(result.into())
}
