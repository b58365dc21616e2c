#!/usr/bin/env python3
"""Build AEGIS's test images as OCI image layouts, from nothing but the Python standard library.

A demo-api image is two layers: what Trivy needs to find an OS and its packages (/etc/os-release,
/etc/alpine-release and an apk database, /lib/apk/db/installed, listing packages at chosen versions), and
the test application itself (tests/apps/demo-api, a static binary built by build-apps.sh) as its
entrypoint, so the same image is scanned by the real Trivy and run by the harness's real node. The
pause image holds tests/apps/pause: the sandbox image of the real node, which cannot reach registry.k8s.io.

    build-images.py OUT_DIR APPS_DIR   -> OUT_DIR/demo-api-v1/, -v2/, -v3/, pause/ (OCI layouts)
                                          and OUT_DIR/pause.tar (the pause layout, for `ctr images import`)

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
PAUSE_TAG = "3.10"
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


def layer(files, executable=()):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o755 if path in executable else 0o644, EPOCH
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


def image(root, tag, title, layers, config):
    """Write an OCI layout at ROOT holding one image of LAYERS (each a (tar, gzip) pair) tagged TAG."""
    os.makedirs(root, exist_ok=True)
    descriptors = []
    for _, gz_bytes in layers:
        digest, size = blob(root, gz_bytes)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
    config = {
        "architecture": "amd64", "os": "linux", "created": "2025-11-26T00:00:00Z", "config": config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t, _ in layers]},
        "history": [{"created": "2025-11-26T00:00:00Z", "created_by": "scripts/harness/build-images.py"} for _ in layers],
    }
    config["config"].setdefault("Labels", {}).update({"org.opencontainers.image.title": title, "org.opencontainers.image.version": tag})
    config_digest, config_size = blob(root, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    }
    manifest_digest, manifest_size = blob(root, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(f"{title}:{tag} {manifest_digest} {root}")


def demo_api(out, tag, packages, binary):
    os_files = {
        "etc/alpine-release": f"{ALPINE}\n".encode(),
        "etc/os-release": (
            f'NAME="Alpine Linux"\nID=alpine\nVERSION_ID={ALPINE}\nPRETTY_NAME="Alpine Linux v3.22"\n'
            'HOME_URL="https://alpinelinux.org/"\n'
        ).encode(),
        "lib/apk/db/installed": apk_installed(packages),
    }
    config = {"Entrypoint": ["/bin/demo-api"], "Env": [f"APP_VERSION={tag}"], "ExposedPorts": {"8080/tcp": {}}, "User": "65534:65534"}
    layers = [layer(os_files), layer({"bin/demo-api": binary}, executable={"bin/demo-api"})]
    image(os.path.join(out, f"demo-api-{tag}"), tag, "demo-api", layers, config)


def pause(out, binary):
    root = os.path.join(out, "pause")
    image(root, PAUSE_TAG, "pause", [layer({"pause": binary}, executable={"pause"})], {"Entrypoint": ["/pause"], "User": "65535:65535"})
    with tarfile.open(os.path.join(out, "pause.tar"), "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, os.path.relpath(path, root))
                info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
                with open(path, "rb") as f:
                    tar.addfile(info, f)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: build-images.py OUT_DIR APPS_DIR")
    out, apps = sys.argv[1], sys.argv[2]
    with open(os.path.join(apps, "demo-api"), "rb") as f:
        demo_binary = f.read()
    with open(os.path.join(apps, "pause"), "rb") as f:
        pause_binary = f.read()
    for tag, packages in IMAGES.items():
        demo_api(out, tag, packages, demo_binary)
    pause(out, pause_binary)


if __name__ == "__main__":
    main()
