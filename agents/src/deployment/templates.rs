//! The deployment files, rendered from fixed templates. Only checked values reach them
//! (a DNS-1123 app name, an image reference of a safe alphabet, numbers, the toolchain):
//! nothing read from the repository is pasted in except a Cargo package name checked the
//! same way, so text in the repository cannot change what is written or run.

use crate::project::Toolchain;

/// Everything the templates need, already validated.
#[derive(Debug, Clone)]
pub(crate) struct Values {
    pub toolchain: Toolchain,
    pub app_name: String,
    pub image: String,
    pub port: u16,
    pub replicas: u32,
    pub environment: String,
    /// The Dockerfile's path from the repository root, for the CI pipelines.
    pub dockerfile_path: String,
    /// Rust: the binary to start. Python: the script. Node/Go: unused.
    pub entrypoint: String,
    /// Python: how dependencies are installed. Node: `npm ci` or `npm install`.
    pub install: String,
}

impl Values {
    /// The numeric user the image runs as; the manifests' runAsUser matches it, so
    /// `runAsNonRoot` can be verified by the kubelet.
    fn uid(&self) -> u32 {
        match self.toolchain {
            Toolchain::Rust | Toolchain::Python => 10001,
            Toolchain::Node => 1000, // the `node` user of the official image
            Toolchain::Go => 65532,  // distroless `nonroot`
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("%APP%", &self.app_name)
            .replace("%IMAGE%", &self.image)
            .replace("%PORT%", &self.port.to_string())
            .replace("%REPLICAS%", &self.replicas.to_string())
            .replace("%ENVIRONMENT%", &self.environment)
            .replace("%DOCKERFILE%", &self.dockerfile_path)
            .replace("%ENTRYPOINT%", &self.entrypoint)
            .replace("%INSTALL%", &self.install)
            .replace("%UID%", &self.uid().to_string())
    }
}

const NO_HEALTHCHECK: &str = "# No HEALTHCHECK: the image carries no HTTP client to probe with; Kubernetes\n\
# checks the port instead (readiness and liveness probes in k8s/deployment.yaml).\n";

pub(crate) fn dockerfile(values: &Values) -> String {
    let body = match values.toolchain {
        Toolchain::Rust => RUST_DOCKERFILE,
        Toolchain::Python => PYTHON_DOCKERFILE,
        Toolchain::Node => NODE_DOCKERFILE,
        Toolchain::Go => GO_DOCKERFILE,
    };
    values
        .fill(body)
        .replace("%NO_HEALTHCHECK%", NO_HEALTHCHECK)
}

const RUST_DOCKERFILE: &str = r#"# Build stage: compile the release binary.
FROM rust:1.83-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin %ENTRYPOINT%

# Run stage: a slim Debian with only the binary, as an unprivileged user.
FROM debian:12.8-slim
RUN useradd --uid %UID% --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /src/target/release/%ENTRYPOINT% /usr/local/bin/app
USER %UID%:%UID%
EXPOSE %PORT%
%NO_HEALTHCHECK%ENTRYPOINT ["/usr/local/bin/app"]
"#;

const PYTHON_DOCKERFILE: &str = r#"FROM python:3.12.8-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
RUN %INSTALL% \
    && useradd --uid %UID% --user-group --no-create-home --shell /usr/sbin/nologin app
USER %UID%:%UID%
EXPOSE %PORT%
%NO_HEALTHCHECK%CMD ["python", "%ENTRYPOINT%"]
"#;

const NODE_DOCKERFILE: &str = r#"FROM node:20.18.1-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package*.json ./
RUN %INSTALL%
COPY . .
USER %UID%:%UID%
EXPOSE %PORT%
%NO_HEALTHCHECK%CMD ["npm", "start"]
"#;

const GO_DOCKERFILE: &str = r#"# Build stage: a static binary.
FROM golang:1.23.4-bookworm AS build
WORKDIR /src
COPY go.* ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/app .

# Run stage: distroless, no shell, as its `nonroot` user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER %UID%:%UID%
EXPOSE %PORT%
%NO_HEALTHCHECK%ENTRYPOINT ["/app"]
"#;

/// The commands that test the project in CI, and the image they run in on GitLab.
fn test_steps(toolchain: Toolchain) -> (&'static str, &'static [&'static str]) {
    match toolchain {
        Toolchain::Rust => ("rust:1.83-slim-bookworm", &["cargo test --locked"]),
        Toolchain::Python => (
            "python:3.12.8-slim-bookworm",
            &["%INSTALL%", "pip install pytest", "python -m pytest"],
        ),
        Toolchain::Node => ("node:20.18.1-bookworm-slim", &["npm ci", "npm test"]),
        Toolchain::Go => ("golang:1.23.4-bookworm", &["go test ./..."]),
    }
}

pub(crate) fn github_workflow(values: &Values) -> String {
    let setup = match values.toolchain {
        Toolchain::Rust => "      - uses: dtolnay/rust-toolchain@1.83.0\n",
        Toolchain::Python => {
            "      - uses: actions/setup-python@v5\n        with:\n          python-version: \"3.12\"\n"
        }
        Toolchain::Node => {
            "      - uses: actions/setup-node@v4\n        with:\n          node-version: \"20\"\n"
        }
        Toolchain::Go => {
            "      - uses: actions/setup-go@v5\n        with:\n          go-version: \"1.23\"\n"
        }
    };
    let (_, steps) = test_steps(values.toolchain);
    let steps: String = steps
        .iter()
        .map(|step| format!("      - run: {step}\n"))
        .collect();
    values.fill(
        &r#"# Tests, then builds and pushes the image to the GitHub container registry.
# Rendered by Troupe's deployment_agent; move it to the repository's .github/workflows/.
name: deploy-%APP%
on:
  push:
    branches: [main]
  workflow_dispatch: {}
permissions:
  contents: read
  packages: write
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
%SETUP%%STEPS%  image:
    needs: test
    runs-on: ubuntu-24.04
    environment: %ENVIRONMENT%
    steps:
      - uses: actions/checkout@v4
      - uses: docker/login-action@v3
        with:
          registry: ghcr.io
          username: ${{ github.actor }}
          password: ${{ secrets.GITHUB_TOKEN }}
      - uses: docker/build-push-action@v6
        with:
          context: .
          file: %DOCKERFILE%
          push: true
          tags: ghcr.io/${{ github.repository }}/%APP%:${{ github.sha }}
"#
        .replace("%SETUP%", setup)
        .replace("%STEPS%", &steps),
    )
}

pub(crate) fn gitlab_ci(values: &Values) -> String {
    let (image, steps) = test_steps(values.toolchain);
    let steps: String = steps.iter().map(|step| format!("    - {step}\n")).collect();
    values.fill(
        &r#"# Tests, then builds and pushes the image to the project's GitLab registry.
# Rendered by Troupe's deployment_agent; move it to the repository root.
stages:
  - test
  - build
test:
  stage: test
  image: %TEST_IMAGE%
  script:
%STEPS%build-image:
  stage: build
  image: docker:27.4.1
  services:
    - docker:27.4.1-dind
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
  environment: %ENVIRONMENT%
  script:
    - echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
    - docker build -f %DOCKERFILE% -t "$CI_REGISTRY_IMAGE/%APP%:$CI_COMMIT_SHA" .
    - docker push "$CI_REGISTRY_IMAGE/%APP%:$CI_COMMIT_SHA"
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
"#
        .replace("%TEST_IMAGE%", image)
        .replace("%STEPS%", &steps),
    )
}

pub(crate) fn k8s_deployment(values: &Values) -> String {
    values.fill(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: %APP%
  namespace: %ENVIRONMENT%
  labels:
    app.kubernetes.io/name: %APP%
    app.kubernetes.io/managed-by: troupe
spec:
  replicas: %REPLICAS%
  selector:
    matchLabels:
      app.kubernetes.io/name: %APP%
  template:
    metadata:
      labels:
        app.kubernetes.io/name: %APP%
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: %UID%
        runAsGroup: %UID%
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: %APP%
          image: "%IMAGE%"
          ports:
            - name: http
              containerPort: %PORT%
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: 500m
              memory: 512Mi
          readinessProbe:
            tcpSocket:
              port: %PORT%
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            tcpSocket:
              port: %PORT%
            initialDelaySeconds: 15
            periodSeconds: 20
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
"#,
    )
}

pub(crate) fn k8s_service(values: &Values) -> String {
    values.fill(
        r#"apiVersion: v1
kind: Service
metadata:
  name: %APP%
  namespace: %ENVIRONMENT%
  labels:
    app.kubernetes.io/name: %APP%
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: %APP%
  ports:
    - name: http
      port: 80
      targetPort: %PORT%
"#,
    )
}

pub(crate) fn plan(values: &Values, files: &[&str], deploy: &str) -> String {
    let toolchain = match values.toolchain {
        Toolchain::Rust => "Rust (cargo)",
        Toolchain::Python => "Python",
        Toolchain::Node => "Node.js (npm)",
        Toolchain::Go => "Go",
    };
    let list: String = files.iter().map(|file| format!("- `{file}`\n")).collect();
    values.fill(&format!(
        "# Deployment plan for %APP%\n\n\
         - Project: {toolchain}\n\
         - Image: `%IMAGE%` (the pipelines push `<registry>/%APP%:<commit>`; set `image` to it)\n\
         - Environment / namespace: `%ENVIRONMENT%`\n\
         - Replicas: %REPLICAS%, container port %PORT%, service port 80\n\n\
         ## Files\n\n{list}\n\
         ## Steps\n\n\
         1. Review the files. Move `.github/workflows/deploy.yml` and `.gitlab-ci.yml` to the \
         repository root for your CI to pick them up.\n\
         2. Build: `docker build -f %DOCKERFILE% -t %IMAGE% .`\n\
         3. Apply: `kubectl create namespace %ENVIRONMENT%` (once), then `kubectl apply -f k8s/`.\n\n\
         ## Notes\n\n\
         - The container runs as user %UID%, non-root, with a read-only root filesystem \
         (`/tmp` is a writable emptyDir) and no capabilities.\n\
         - Probes check that port %PORT% accepts connections; the Dockerfile has no HEALTHCHECK \
         (no HTTP client in the image).\n\
         - Deploy command: {deploy}\n"
    ))
}
