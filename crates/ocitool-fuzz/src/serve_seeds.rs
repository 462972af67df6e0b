/// Seeds of the `serve_request` fuzz target: request heads as podman, skopeo, containerd and
/// curl send them, hostile ones, and bare Range and Accept values. Included by the harness
/// (`serve.rs`, whose replay test runs every seed) and by `cargo xtask fuzz`.
pub const SERVE_SEEDS: &[(&str, &[u8])] = &[
    ("ping", b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: containers/5.23.1 (github.com/containers/image)\r\nDocker-Distribution-Api-Version: registry/2.0\r\nAccept-Encoding: gzip\r\n\r\n"),
    ("manifest-tag", b"GET /v2/team/app/manifests/1.0 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nAccept: application/vnd.oci.image.index.v1+json;q=0.9\r\n\r\n"),
    ("containerd-head", b"HEAD /v2/library/nginx/manifests/1.25?ns=docker.io HTTP/1.1\r\nHost: mirror:5000\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*\r\nUser-Agent: containerd/1.6.20\r\n\r\n"),
    ("blob-range", b"GET /v2/app/blobs/sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29 HTTP/1.1\r\nHost: h\r\nRange: bytes=1024-\r\nIf-Range: \"sha256:3d3d1d6ae926c347b2fc0e01c21f12d7898ec2460d16823064eb4b7e03c7ca29\"\r\nAuthorization: Basic dGVzdGVyOnMzY3JldA==\r\n\r\n"),
    ("pipelined", b"GET /v2/a/tags/list?n=2&last=1.0 HTTP/1.1\r\nHost: h\r\n\r\nGET /v2/_catalog?n=10 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    ("referrers", b"GET /v2/app/referrers/sha256:721b70ae0713c72c49b4f064790476c832f2b677e5b792e22e9ee41896e5cf75?artifactType=application%2Fspdx%2Bjson HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("http10", b"GET http://h:5000/v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    ("put-body", b"PUT /v2/app/manifests/1.0 HTTP/1.1\r\nHost: h\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\n\r\n{}"),
    ("chunked", b"PATCH /v2/app/blobs/uploads/1234 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"),
    ("traversal", b"GET /v2/app%2F..%2F..%2Fetc/blobs/sha256:..%2F..%2Fpasswd HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("dot-segments", b"GET /v2/../../etc/passwd/manifests/%2e%2e HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("blake3", b"GET /v2/app/blobs/blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("conflicting-lengths", b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    ("smuggling", b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("no-host", b"GET /v2/ HTTP/1.1\r\n\r\n"),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ("half-head", b"GET /v2/app/manif"),
    ("range-suffix", b"bytes=-500"),
    ("range-overflow", b"bytes=0-99999999999999999999999999999"),
    ("range-many", b"bytes=0-0,1-1,2-2,-1"),
    ("range-bad", b"bytes=5-4"),
    ("accept-list", b"application/vnd.oci.image.index.v1+json; q=0, application/*;q=0.5, */*;q=0.1"),
];
