//! imgest for JavaScript: type conversions and error mapping only. Every decision about images
//! lives in the `imgest` crate.
//!
//! The JavaScript entry points (`init`, `process`, `processSync`, `ImgestError`, `toBlob`) are in
//! `js/`; they wrap the raw exports below.

use imgest::{ErrorCode, Options, Output};
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
mod shims;

/// Runs the pipeline on `input` with `options` (the core's snake_case wire format; `undefined`
/// or `null` for the defaults). Returns the result object, or throws `{code, message}`.
#[wasm_bindgen(js_name = processRaw)]
pub fn process_raw(input: &[u8], options: JsValue) -> Result<JsValue, JsValue> {
    let options = parse_options(options)?;
    let output = imgest::process(input, &options).map_err(|e| to_js_error(&e))?;
    to_js(&output)
}

/// Validates, decodes, converts to sRGB and orients `input` without resizing or encoding:
/// `{width, height, data}` with `data` the RGBA pixels (a copy, 4 bytes per pixel).
#[wasm_bindgen(js_name = decodeRaw)]
pub fn decode_raw(input: &[u8], options: JsValue) -> Result<JsValue, JsValue> {
    let options = parse_options(options)?;
    let pipeline = imgest::Pipeline::new(options).map_err(|e| to_js_error(&e))?;
    let prepared = pipeline.prepare(input).map_err(|e| to_js_error(&e))?;
    let result = js_sys::Object::new();
    js_sys::Reflect::set(&result, &"width".into(), &prepared.image.width().into())?;
    js_sys::Reflect::set(&result, &"height".into(), &prepared.image.height().into())?;
    let data = js_sys::Uint8Array::from(prepared.image.as_raw().as_slice());
    js_sys::Reflect::set(&result, &"data".into(), &data)?;
    Ok(result.into())
}

/// Every error code, as `{code, number}` objects in numeric order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Result<JsValue, JsValue> {
    let codes: Vec<serde_json::Value> = ErrorCode::ALL
        .iter()
        .map(|c| serde_json::json!({ "code": c.as_str(), "number": c.as_u32() }))
        .collect();
    json_to_js(&serde_json::Value::Array(codes))
}

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    imgest::VERSION.to_string()
}

fn parse_options(value: JsValue) -> Result<Options, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Options::default());
    }
    let invalid = |reason: String| {
        to_js_error(&imgest::Error::InvalidOptions {
            field: "options".into(),
            reason,
        })
    };
    // Through JSON, so that unknown keys are rejected exactly as in every other binding
    // (serde-wasm-bindgen only looks up the fields it knows).
    let json: serde_json::Value =
        serde_wasm_bindgen::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let json = serde_json::to_string(&json).map_err(|e| invalid(e.to_string()))?;
    Options::from_json(&json).map_err(|e| to_js_error(&e))
}

/// `{code, message, limit?}`; the JS wrapper turns it into an `ImgestError`.
fn to_js_error(e: &imgest::Error) -> JsValue {
    let mut obj = serde_json::json!({ "code": e.code().as_str(), "message": e.to_string() });
    if let Some(limit) = e.limit() {
        obj["limit"] = serde_json::Value::from(limit.as_str());
    }
    json_to_js(&obj).unwrap_or_else(|_| JsValue::from_str(&e.to_string()))
}

fn json_to_js(value: &serde_json::Value) -> Result<JsValue, JsValue> {
    use serde::Serialize;
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsValue::from_str(&e.to_string()))
}

/// snake_case → camelCase.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for ch in key.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn camel_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| (camel(&k), camel_keys(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(camel_keys).collect())
        }
        other => other,
    }
}

/// The result object: the core's `Output` with camelCase keys, `variants` keyed by name, and each
/// variant's `bytes` as a fresh `Uint8Array` (a copy, never a view into WASM memory).
fn to_js(output: &Output) -> Result<JsValue, JsValue> {
    let mut json = serde_json::to_value(output).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let list = json
        .get_mut("variants")
        .map(serde_json::Value::take)
        .unwrap_or_default();
    let json = camel_keys(json);
    let result = json_to_js(&json)?;
    let variants = js_sys::Object::new();
    let order = js_sys::Array::new();
    for (meta, v) in camel_keys(list)
        .as_array()
        .into_iter()
        .flatten()
        .zip(&output.variants)
    {
        let obj = json_to_js(meta)?;
        js_sys::Reflect::set(
            &obj,
            &"bytes".into(),
            &js_sys::Uint8Array::from(&v.bytes[..]),
        )?;
        js_sys::Reflect::set(&variants, &v.name.as_str().into(), &obj)?;
        order.push(&v.name.as_str().into());
    }
    js_sys::Reflect::set(&result, &"variants".into(), &variants)?;
    js_sys::Reflect::set(&result, &"variantNames".into(), &order)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn camel_case() {
        assert_eq!(super::camel("dominant_color"), "dominantColor");
        assert_eq!(super::camel("icc"), "icc");
        assert_eq!(super::camel("max_alloc_bytes"), "maxAllocBytes");
    }
}
