//! A large generated tree for the throughput benchmark (`benches/scanner.rs`): mixed
//! languages and configs, one file in ten with a planted finding.

use std::io::Write;
use std::path::Path;

const PYTHON: &str = r#"import os
import json


def load_config(path):
    with open(path) as handle:
        return json.load(handle)


class Repository:
    def __init__(self, connection):
        self.connection = connection

    def find(self, user_id):
        cursor = self.connection.cursor()
        cursor.execute("SELECT name FROM users WHERE id = %s", (user_id,))
        return cursor.fetchone()

    def names(self):
        return [row[0] for row in self.connection.execute("SELECT name FROM users")]
"#;

const JAVASCRIPT: &str = r#"const express = require('express');
const path = require('path');

function total(items) {
  return items.reduce((sum, item) => sum + item.price * item.quantity, 0);
}

async function findUser(db, id) {
  const rows = await db.query('SELECT * FROM users WHERE id = ?', [id]);
  return rows[0];
}

module.exports = { total, findUser, root: path.join(__dirname, 'public') };
"#;

const GO: &str = r#"package service

import (
	"database/sql"
	"fmt"
)

type Store struct {
	db *sql.DB
}

func (s *Store) Name(id int) (string, error) {
	var name string
	err := s.db.QueryRow("SELECT name FROM users WHERE id = ?", id).Scan(&name)
	if err != nil {
		return "", fmt.Errorf("user %d: %w", id, err)
	}
	return name, nil
}
"#;

const RUST: &str = r#"use std::collections::HashMap;

pub struct Cache {
    entries: HashMap<String, String>,
}

impl Cache {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.entries.get(key)
    }

    pub fn insert(&mut self, key: String, value: String) {
        self.entries.insert(key, value);
    }
}
"#;

const SHELL: &str = r#"#!/bin/sh
set -eu
for file in "$@"; do
  echo "checking $file"
  test -f "$file"
done
"#;

const YAML: &str = "service:\n  name: api\n  port: 8080\n  replicas: 3\n";

const PLANTED: &[(&str, &str)] = &[
    (
        "py",
        "\ndef lookup(cursor, name):\n    cursor.execute(\"SELECT * FROM users WHERE name = '\" + name + \"'\")\n",
    ),
    (
        "js",
        "\nfunction run(cmd) { require('child_process').exec(cmd); }\n",
    ),
    (
        "go",
        "\nfunc insecure() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }\n",
    ),
    (
        "rs",
        "\npub fn client() { let _ = reqwest::Client::builder().danger_accept_invalid_certs(true); }\n",
    ),
    ("sh", "\ncurl -k https://example.internal/health\n"),
    ("yaml", "debug: true\n"),
];

/// Writes `files` files under `dir` in nested directories of 100; returns the bytes
/// written.
pub fn generate_tree(dir: &Path, files: usize) -> std::io::Result<u64> {
    let kinds = [
        ("py", PYTHON),
        ("js", JAVASCRIPT),
        ("go", GO),
        ("rs", RUST),
        ("sh", SHELL),
        ("yaml", YAML),
    ];
    let mut written = 0u64;
    for index in 0..files {
        let (extension, body) = kinds[index % kinds.len()];
        let folder = dir.join(format!("pkg{:04}", index / 100));
        std::fs::create_dir_all(&folder)?;
        let mut file = std::fs::File::create(folder.join(format!("file{index}.{extension}")))?;
        let mut text = body.to_string();
        if index % 10 == 0
            && let Some((_, planted)) = PLANTED.iter().find(|(kind, _)| *kind == extension)
        {
            text.push_str(planted);
        }
        file.write_all(text.as_bytes())?;
        written += text.len() as u64;
    }
    Ok(written)
}
