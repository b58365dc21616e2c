#!/usr/bin/env python3
"""Build AEGIS's test images as OCI image layouts, from nothing but the Python standard library.

An image here is what Trivy needs to find an OS and its packages: /etc/os-release, /etc/alpine-release
and an apk database (/lib/apk/db/installed) listing packages at chosen versions. No container ever runs
these images; they exist to be pushed to the local registry and scanned by the real Trivy.

    build-images.py OUT_DIR      -> OUT_DIR/demo-api-v1/, -v2/, -v3/ (OCI layouts, tag = version)

demo-api:v1  openssl 3.5.1-r0 (vulnerable to CVE-2099-1001, HIGH; fixed in 3.5.2-r0), zlib 1.3.1-r2
demo-api:v2  openssl 3.5.2-r0 (fixed),                                                 zlib 1.3.1-r2
demo-api:v3  openssl 3.5.2-r0,  zlib 1.3.1-r1 (vulnerable to CVE-2099-1002, CRITICAL; fixed in 1.3.1-r2)

The advisories live in tests/fixtures/trivy-db/ and are built into a real trivy.db by scripts/harness/trivy-db.sh.
Output is deterministic (fixed mtimes, sorted entries), so digests are stable across runs and machines.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

ALPINE = "3.22.2"
BASE = [("busybox", "1.37.0-r19"), ("musl", "1.2.5-r10"), ("ca-certificates-bundle", "20250619-r0")]
IMAGES = {
    "v1": BASE + [("openssl", "3.5.1-r0"), ("zlib", "1.3.1-r2")],
    "v2": BASE + [("openssl", "3.5.2-r0"), ("zlib", "1.3.1-r2")],
    "v3": BASE + [("openssl", "3.5.2-r0"), ("zlib", "1.3.1-r1")],
}
EPOCH = 1764115200  # 2025-11-26T00:00:00Z: fixed mtimes make the layer bytes reproducible


def apk_installed(packages):
    """The apk database format: one block of `K:value` lines per package, blank-line separated."""
    blocks = []
    for name, version in packages:
        blocks.append("\n".join([
            f"P:{name}", f"V:{version}", "A:x86_64", f"o:{name}", "L:MIT",
            f"T:{name} (AEGIS test image)", "U:https://example.invalid/aegis", "m:AEGIS tests <aegis@example.invalid>",
        ]))
    return ("\n\n".join(blocks) + "\n\n").encode()


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"etc", "lib", "lib/apk", "lib/apk/db"})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def blob(root, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256", digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def build(out, tag, packages):
    root = os.path.join(out, f"demo-api-{tag}")
    os.makedirs(root, exist_ok=True)
    files = {
        "etc/alpine-release": f"{ALPINE}\n".encode(),
        "etc/os-release": (
            f'NAME="Alpine Linux"\nID=alpine\nVERSION_ID={ALPINE}\nPRETTY_NAME="Alpine Linux v3.22"\n'
            'HOME_URL="https://alpinelinux.org/"\n'
        ).encode(),
        "lib/apk/db/installed": apk_installed(packages),
    }
    tar_bytes, gz_bytes = layer(files)
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    layer_digest, layer_size = blob(root, gz_bytes)
    config = {
        "architecture": "amd64", "os": "linux", "created": "2025-11-26T00:00:00Z",
        "config": {"Entrypoint": ["/bin/demo-api"], "ExposedPorts": {"8080/tcp": {}},
                   "Labels": {"org.opencontainers.image.title": "demo-api", "org.opencontainers.image.version": tag}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2025-11-26T00:00:00Z", "created_by": "scripts/harness/build-images.py"}],
    }
    config_digest, config_size = blob(root, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = blob(root, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(f"demo-api:{tag} {manifest_digest} {root}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: build-images.py OUT_DIR")
    for tag, packages in IMAGES.items():
        build(sys.argv[1], tag, packages)


if __name__ == "__main__":
    main()
