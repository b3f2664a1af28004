//! Tests of [`super`]: body building, reply reading, the errors it names.

use super::*;

fn tpl(yaml: &str, c: &ClientConfig) -> Template {
    let spec = TemplateSpec::from_yaml(yaml).unwrap();
    Template::compile(&spec, "t.yaml", c).unwrap()
}

#[test]
fn body_fills_placeholders_and_leaves_out_absent_members() {
    let mut c = ClientConfig {
        model: "m".into(),
        ..ClientConfig::default()
    };
    c.extra_body.insert("top_k".into(), serde_json::json!(1));
    let t = tpl(
        r#"
path: /x
body: {model: "{{model}}", p: "{{prompt}}", n: "{{max_tokens}}", min: "{{min_tokens}}",
   t: "{{temperature}}", img: ["{{image_base64}}"], s: "{{stream}}",
   w: "{{field.workflow}}", label: "{{field.width}}x{{field.height}} for {{model}}",
   opts: {fixed: [1, "a"]}}
extra_body_at: /opts
reply: {framing: json, text: [/t]}
"#,
        &c,
    );
    let fields: Map<String, Value> =
        serde_json::from_str(r#"{"width": 512, "height": 768, "workflow": {"3": {"k": [1]}}}"#)
            .unwrap();
    let b = t.build(&Vars {
        prompt: "hi \"x\"",
        max_tokens: Some(7),
        fields: Some(&fields),
        ..Vars::default()
    });
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"model": "m", "p": "hi \"x\"", "n": 7, "min": 7, "img": [], "s": false,
            "w": {"3": {"k": [1]}}, "label": "512x768 for m", "opts": {"fixed": [1, "a"], "top_k": 1}})
    );
    let b = t.build(&Vars {
        prompt: "p",
        images: &["data:image/png;base64,QUJD"],
        ..Vars::default()
    });
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["img"], serde_json::json!(["QUJD"]));
    assert!(v.get("n").is_none() && v.get("w").is_none(), "{v}");
}

#[test]
fn every_image_in_image_urls_and_messages() {
    let t = tpl(
        r#"
path: /x
body: {first: "{{image_url}}", all: "{{image_urls}}", messages: "{{messages}}"}
reply: {framing: json, text: [/t]}
"#,
        &ClientConfig::default(),
    );
    let urls = ["data:image/png;base64,QQ==", "data:image/jpeg;base64,Qg=="];
    let v: Value = serde_json::from_slice(&t.build(&Vars {
        prompt: "two pictures",
        images: &urls,
        ..Vars::default()
    }))
    .unwrap();
    assert_eq!(v["first"], urls[0]);
    assert_eq!(v["all"], serde_json::json!(urls));
    let parts = &v["messages"][0]["content"];
    assert_eq!(parts[0]["text"], "two pictures");
    assert_eq!(parts[1]["image_url"]["url"], urls[0]);
    assert_eq!(parts[2]["image_url"]["url"], urls[1]);
    // one image (a session turn's): the array holds it
    let v: Value = serde_json::from_slice(&t.build(&Vars {
        prompt: "p",
        images: &urls[1..],
        ..Vars::default()
    }))
    .unwrap();
    assert_eq!(v["all"], serde_json::json!([urls[1]]));
    // no image: left out
    let v: Value = serde_json::from_slice(&t.build(&Vars::default())).unwrap();
    assert!(v.get("all").is_none() && v.get("first").is_none(), "{v}");
}

#[test]
fn captured_slots_read_like_the_whole_event() {
    let ptrs = [
        "/choices/0/delta/content",
        "/choices/2/text",
        "/usage",
        "/usage/prompt_tokens",
        "/error/message",
        "/0/k",
        "/esc",
        "/n",
    ];
    let mut t = Trie::default();
    for p in ptrs {
        t.add(&tokens(p));
    }
    t.number(&mut 0);
    let raw =
        br#"{"id":"x","choices":[{"delta":{"content":"hi","role":"a"},"logprobs":{"a":[1,2]}},
        {"text":"no"},{"text":"yes"}],"usage":{"prompt_tokens":3,"x":[{}]},"error":"flat",
        "0":{"k":1},"esc":"a\"b","n":2.5}"#;
    let caps = capture(raw, &t).unwrap();
    assert_eq!(
        caps.len(),
        7,
        "/usage/prompt_tokens is read inside /usage's slot; indices share their keys' slots"
    );
    let full: Value = serde_json::from_slice(raw).unwrap();
    for p in ptrs {
        let got = Pointer::new(p, &t).get(&caps).map(|g| g.text());
        let want = full
            .pointer(p)
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        assert_eq!(got, want, "{p}");
    }
    assert!(matches!(
        caps[0],
        Some(Cap::Str(std::borrow::Cow::Borrowed("hi")))
    ));
    assert!(capture(b"{\"a\":1} x", &t).is_err());
    assert!(capture(b"data: {}", &t).is_err());
}

#[test]
fn json_lines_split_anywhere() {
    let input = b"{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}";
    for cut in 0..input.len() {
        let mut l = Lines::default();
        let mut got = Vec::new();
        let mut on = |x: &[u8]| {
            got.push(String::from_utf8(x.to_vec()).unwrap());
            Ok(())
        };
        l.feed(&input[..cut], &mut on).unwrap();
        l.feed(&input[cut..], &mut on).unwrap();
        l.finish(&mut on).unwrap();
        assert_eq!(got, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"], "cut at {cut}");
    }
}
