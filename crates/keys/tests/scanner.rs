//! The secret-scanner rule of `docs/security.md`, run as written: its Python block must find
//! every real key in a text and nothing that only looks like one.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::process::Command;

use agentvista_keys::ApiKey;

fn python_block(markdown: &str) -> String {
    let start = markdown.find("```python\n").unwrap() + "```python\n".len();
    let end = start + markdown[start..].find("```").unwrap();
    markdown[start..end].to_owned()
}

#[test]
fn the_documented_scanner_finds_real_keys_and_only_them() {
    if Command::new("python3").arg("--version").output().is_err() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the scanner snippet of docs/security.md needs python3"
        );
        return;
    }
    let markdown = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .unwrap();
    let dir = std::env::temp_dir().join(format!("agentvista-scanner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("scan.py");
    std::fs::write(&script, python_block(&markdown)).unwrap();

    let keys: Vec<ApiKey> = (0..20).map(|_| ApiKey::generate().unwrap()).collect();
    let real: Vec<&str> = keys.iter().map(ApiKey::expose_secret).collect();
    // Near misses: one character changed (the checksum fails), a truncated key, upper-case hex.
    let mut typo = real[0].to_owned().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let truncated = &real[1][..49];
    let upper = real[2].to_uppercase().replacen("AV_", "av_", 1);
    let mut text = String::new();
    for (i, key) in real.iter().enumerate() {
        match i % 3 {
            0 => text.push_str(&format!("AGENTVISTA_API_KEY={key}\n")),
            1 => text.push_str(&format!("client = Client(\"{key}\")\n")),
            _ => text.push_str(&format!("  {key}  # do not commit\n")),
        }
    }
    text.push_str(&format!(
        "{typo}\n{truncated}\n{upper}\nav_0123abcd_tooshort\n"
    ));
    let input = dir.join("leaky.txt");
    std::fs::write(&input, &text).unwrap();

    let out = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found, real,
        "the scanner found exactly the real keys, in order"
    );
}
