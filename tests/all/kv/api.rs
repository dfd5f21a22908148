//! Every method, value type, rule and option through a Workers-style script.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{call, kv_dev, urlencode};
use crate::harness::{Edge, client, copy_dir, fixture, scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_and_value_type() {
    let (edge, _state) = kv_dev(&[]);
    let c = client();
    let u = |p: &str| edge.url(p);

    let shape = call(&c, "GET", u("/shape"), vec![]).await;
    assert_eq!(shape["constructor"], "KVNamespace");
    assert_eq!(
        shape["methods"],
        json!(["get", "getWithMetadata", "put", "delete", "list"])
    );
    assert_eq!(shape["envKeys"], json!(["KV", "OTHER"]));
    assert_eq!(shape["construct"]["error"], "TypeError");

    // Absent keys are null in every form.
    for ty in ["text", "json", "arrayBuffer", "stream"] {
        let v = call(&c, "GET", u(&format!("/get?key=nope&type={ty}")), vec![]).await;
        assert_eq!(v["kind"], "null", "{ty}");
    }
    let m = call(&c, "GET", u("/meta?key=nope"), vec![]).await;
    assert_eq!(
        m,
        json!({"value": {"kind": "null"}, "metadata": null, "cacheStatus": null})
    );

    // Every value type goes in, every read type comes out.
    for how in ["string", "buffer", "view", "stream"] {
        let key = format!("v-{how}");
        call(
            &c,
            "POST",
            u(&format!("/put?key={key}&as={how}")),
            "héllo wörld".into(),
        )
        .await;
        let v = call(&c, "GET", u(&format!("/get?key={key}")), vec![]).await;
        assert_eq!(
            v,
            json!({"kind": "string", "value": "héllo wörld"}),
            "{how}"
        );
        let v = call(
            &c,
            "GET",
            u(&format!("/get?key={key}&type=arrayBuffer")),
            vec![],
        )
        .await;
        assert_eq!(v["kind"], "ArrayBuffer", "{how}");
        assert_eq!(
            v["bytes"],
            "héllo wörld".len(),
            "{how}: only the view's bytes"
        );
        let v = call(&c, "GET", u(&format!("/get?key={key}&type=stream")), vec![]).await;
        assert_eq!(
            v,
            json!({"kind": "ReadableStream", "value": "héllo wörld"}),
            "{how}"
        );
    }
    // Binary values survive untouched.
    let binary: Vec<u8> = (0..=255u8).collect();
    call(&c, "POST", u("/put?key=bin&as=buffer"), binary.clone()).await;
    let v = call(&c, "GET", u("/get?key=bin&type=arrayBuffer"), vec![]).await;
    assert_eq!(v["bytes"], 256);
    // An empty value is a value, not an absence.
    call(&c, "POST", u("/put?key=empty"), vec![]).await;
    let v = call(&c, "GET", u("/get?key=empty"), vec![]).await;
    assert_eq!(v, json!({"kind": "string", "value": ""}));

    // json, cacheTtl.
    call(
        &c,
        "POST",
        u("/put?key=doc"),
        br#"{"a":[1,2],"b":"c"}"#.to_vec(),
    )
    .await;
    let v = call(&c, "GET", u("/get-json?key=doc"), vec![]).await;
    assert_eq!(v["value"], json!({"a": [1, 2], "b": "c"}));
    let v = call(&c, "GET", u("/get?key=doc&type=json&cacheTtl=60"), vec![]).await;
    assert_eq!(v["value"], json!({"a": [1, 2], "b": "c"}));

    // Metadata round-trips and is replaced (not merged) by a later put.
    let meta = urlencode(r#"{"owner":"me","n":1,"tags":["x"]}"#);
    call(
        &c,
        "POST",
        u(&format!("/put?key=m&metadata={meta}")),
        "mv".into(),
    )
    .await;
    let m = call(&c, "GET", u("/meta?key=m"), vec![]).await;
    assert_eq!(m["value"]["value"], "mv");
    assert_eq!(m["metadata"], json!({"owner": "me", "n": 1, "tags": ["x"]}));
    assert_eq!(m["cacheStatus"], Value::Null);
    let m = call(&c, "GET", u("/meta?key=m&type=arrayBuffer"), vec![]).await;
    assert_eq!(m["value"]["kind"], "ArrayBuffer");
    call(&c, "POST", u("/put?key=m"), "mv2".into()).await;
    let m = call(&c, "GET", u("/meta?key=m"), vec![]).await;
    assert_eq!(m["metadata"], Value::Null);

    // Bulk get: a Map in the order asked, null for absent keys.
    let b = call(
        &c,
        "POST",
        u("/bulk"),
        br#"["doc","nope","empty"]"#.to_vec(),
    )
    .await;
    assert_eq!(b["isMap"], true, "{b}");
    assert_eq!(
        b["entries"],
        json!([
            ["doc", r#"{"a":[1,2],"b":"c"}"#],
            ["nope", null],
            ["empty", ""]
        ])
    );
    let b = call(&c, "POST", u("/bulk?type=json"), br#"["doc"]"#.to_vec()).await;
    assert_eq!(b["entries"], json!([["doc", {"a": [1, 2], "b": "c"}]]));
    call(
        &c,
        "POST",
        u(&format!("/put?key=m2&metadata={}", urlencode("[1]"))),
        "x".into(),
    )
    .await;
    let b = call(&c, "POST", u("/bulk-meta"), br#"["m2","nope"]"#.to_vec()).await;
    assert_eq!(
        b["entries"],
        json!([["m2", {"value": "x", "metadata": [1]}], ["nope", {"value": null, "metadata": null}]])
    );

    // delete; deleting again is fine.
    call(&c, "POST", u("/delete?key=doc"), vec![]).await;
    call(&c, "POST", u("/delete?key=doc"), vec![]).await;
    assert_eq!(
        call(&c, "GET", u("/get?key=doc"), vec![]).await["kind"],
        "null"
    );

    // The second binding is another namespace.
    assert_eq!(
        call(&c, "GET", u("/get?key=m&ns=other"), vec![]).await["kind"],
        "null"
    );
    call(&c, "POST", u("/put?key=only-other&ns=other"), "o".into()).await;
    let l = call(&c, "GET", u("/list?ns=other"), vec![]).await;
    assert_eq!(l["keys"], json!([{"name": "only-other"}]));
    assert_eq!(
        call(&c, "GET", u("/get?key=only-other"), vec![]).await["kind"],
        "null"
    );

    // list shape: metadata parsed, list_complete, no cursor when complete, cacheStatus.
    let l = call(&c, "GET", u("/list?prefix=m"), vec![]).await;
    assert_eq!(
        l,
        json!({"keys": [{"name": "m"}, {"name": "m2", "metadata": [1]}], "list_complete": true, "cacheStatus": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_rejects_with_its_reason() {
    let (edge, _state) = kv_dev(&[]);
    let e = call(&client(), "GET", edge.url("/errors"), vec![]).await;
    let expect = |case: &str, class: &str, needle: &str| {
        assert_eq!(e[case]["error"], class, "{case}: {}", e[case]);
        let message = e[case]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{case}: {message:?} lacks {needle:?}"
        );
    };
    expect(
        "emptyKey",
        "Error",
        "KV GET failed: 400 Key names must not be empty",
    );
    expect("dotKey", "Error", "Illegal key name \".\"");
    expect(
        "dotDotKey",
        "Error",
        "KV DELETE failed: 400 Illegal key name \"..\"",
    );
    expect(
        "longKey",
        "Error",
        "414 UTF-8 encoded length of 513 exceeds key length limit of 512",
    );
    expect("longUtf8Key", "Error", "UTF-8 encoded length of 513");
    expect(
        "bigValue",
        "Error",
        "413 Value length of 26214401 exceeds limit of 26214400",
    );
    expect("bigStream", "Error", "exceeds limit of 26214400");
    expect("bigMetadata", "Error", "413 Metadata length of");
    expect(
        "shortTtl",
        "Error",
        "Invalid expiration_ttl of 59. Expiration TTL must be at least 60",
    );
    expect("nanTtl", "Error", "Invalid expiration_ttl of NaN");
    expect(
        "pastExpiration",
        "Error",
        "Expiration times must be at least 60 seconds in the future",
    );
    expect("badType", "TypeError", "Unknown response type");
    expect(
        "badBulkType",
        "TypeError",
        "not a valid type for a bulk get",
    );
    expect("tooManyBulk", "Error", "between 1 and 100 keys");
    expect(
        "badValue",
        "TypeError",
        "KV put() accepts only strings, ArrayBuffers",
    );
    expect("badMetadata", "TypeError", "serializable to JSON");
    expect("bigLimit", "Error", "Invalid key_count_limit of 1001");
    expect("zeroLimit", "Error", "Invalid key_count_limit of 0");
    expect("badCursor", "Error", "Invalid cursor");
    expect("shortCacheTtl", "Error", "Invalid cache_ttl of 10");
    // None of that broke the binding.
    assert_eq!(e["okAfterAll"]["ok"], "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_10k_keys_while_keys_change() {
    let (edge, _state) = kv_dev(&[]);
    let c = client();
    for batch in 0..10 {
        let r = call(
            &c,
            "GET",
            edge.url(&format!("/fill?n=1000&prefix=p/{batch}/")),
            vec![],
        )
        .await;
        assert_eq!(r["ok"], 1000);
    }
    call(&c, "POST", edge.url("/put?key=q/outside"), "x".into()).await;
    let mut expected: BTreeSet<String> = (0..10)
        .flat_map(|b| (0..1000).map(move |i| format!("p/{b}/{i:04}")))
        .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = edge.url("/list?prefix=p/");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = call(&c, "GET", url, vec![]).await;
        let names: Vec<String> = page["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_string())
            .collect();
        assert!(names.len() <= 1000);
        seen.extend(names);
        pages += 1;
        // Between pages: a key behind the cursor (never seen), one ahead (seen), one ahead
        // deleted (never seen).
        if pages == 3 {
            let last = seen.last().unwrap().clone();
            call(&c, "POST", edge.url("/put?key=p/0/0000a"), "behind".into()).await;
            call(&c, "POST", edge.url("/put?key=p/9/9999z"), "ahead".into()).await;
            call(&c, "POST", edge.url("/delete?key=p/8/0500"), vec![]).await;
            assert!(last.as_str() > "p/0/0000a" && last.as_str() < "p/8/0500");
            expected.insert("p/9/9999z".into());
            expected.remove("p/8/0500");
        }
        if page["list_complete"] == true {
            assert!(page.get("cursor").is_none());
            break;
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_string());
    }
    assert_eq!(pages, 10, "10,000 live keys in pages of 1000");
    let sorted: Vec<String> = expected.iter().cloned().collect();
    assert_eq!(seen.len(), sorted.len());
    assert!(seen == sorted, "keys out of order, repeated or missing");

    // A smaller limit, and a prefix with no keys.
    let page = call(&c, "GET", edge.url("/list?prefix=p/5/&limit=7"), vec![]).await;
    assert_eq!(page["keys"].as_array().unwrap().len(), 7);
    assert_eq!(page["list_complete"], false);
    let page = call(&c, "GET", edge.url("/list?prefix=zzz"), vec![]).await;
    assert_eq!(page["keys"], json!([]));
    assert_eq!(page["list_complete"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_vanish_at_once() {
    let apps = scratch("kv-ttl-apps");
    copy_dir(&fixture("kv"), &apps.join("kv"));
    let data = scratch("kv-ttl-data");
    let edge = Edge::serve_in(&apps, &data, &[], &[("EDGE_KV_CLOCK", "manual")]);
    let c = client();
    let u = |p: &str| format!("{}{p}", edge.base);
    let host = "kv.localhost";
    let call = |method: &'static str, url: String| {
        let c = c.clone();
        async move {
            let res = c
                .request(method.parse().unwrap(), url)
                .header("host", host)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success());
            res.json::<Value>().await.unwrap()
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    call("POST", u("/put?key=ttl60&ttl=60")).await;
    call("POST", u(&format!("/put?key=at&expiration={}", now + 300))).await;
    call("POST", u("/put?key=forever")).await;
    let l = call("GET", u("/list")).await;
    let names: Vec<&str> = l["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["at", "forever", "ttl60"]);
    let exp = l["keys"][2]["expiration"].as_u64().unwrap();
    assert!(
        (now + 60..=now + 62).contains(&exp),
        "expiration {exp} vs now {now}"
    );
    assert_eq!(l["keys"][0]["expiration"], now + 300);

    let admin: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("admin.json")).unwrap()).unwrap();
    let advance = |secs: u64| {
        let c = c.clone();
        let admin = admin.clone();
        async move {
            let res = c
                .post(format!(
                    "{}/v1/clock/advance?secs={secs}",
                    admin["url"].as_str().unwrap()
                ))
                .bearer_auth(admin["token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
    };
    advance(63).await;
    assert_eq!(call("GET", u("/get?key=ttl60")).await["kind"], "null");
    let m = call("GET", u("/meta?key=ttl60")).await;
    assert_eq!(m["value"]["kind"], "null");
    assert_eq!(call("GET", u("/get?key=at")).await["kind"], "string");
    advance(300).await;
    assert_eq!(call("GET", u("/get?key=at")).await["kind"], "null");
    let l = call("GET", u("/list")).await;
    assert_eq!(l["keys"], json!([{"name": "forever"}]));
    // The admin endpoint wants its token.
    let res = c
        .post(format!(
            "{}/v1/clock/advance?secs=1",
            admin["url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_worker_syntax_sees_bindings_as_globals() {
    let state = scratch("kv-sw-state");
    let edge = Edge::start(&[
        "dev",
        fixture("kv-service-worker").to_str().unwrap(),
        "--port",
        "0",
        "--persist-to",
        state.to_str().unwrap(),
    ]);
    let c = client();
    let res = c.put(edge.url("/?key=k")).body("v1").send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let got: Value = c
        .get(edge.url("/?key=k"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"greeting": "hello", "value": "v1"}));
}
