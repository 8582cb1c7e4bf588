#!/usr/bin/env bash
# Vendor the web page's JavaScript (htmx) from the npm registry into
# vstudio/web/static/vendor/, so users of vstudio need no build step and no CDN.
# Run by hand when upgrading; the result is committed. Needs npm (for `npm pack`).
set -euo pipefail
cd "$(dirname "$0")/.."

# htmx 2.x: the stable line whose attributes (hx-post, hx-target, hx-swap,
# hx-headers) the templates use. Bump deliberately and re-test the browser suite.
HTMX_VERSION="${HTMX_VERSION:-2.0.11}"

DEST=vstudio/web/static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DEST"

( cd "$WORK" && npm pack --silent "htmx.org@${HTMX_VERSION}" >/dev/null )
tar -xzf "$WORK"/htmx.org-"${HTMX_VERSION}".tgz -C "$WORK"
cp "$WORK/package/dist/htmx.min.js" "$DEST/htmx.min.js"
cp "$WORK/package/LICENSE" "$DEST/htmx.LICENSE"
LICENSE_ID=$(npm view "htmx.org@${HTMX_VERSION}" license)
SHA=$(sha256sum "$DEST/htmx.min.js" | cut -d' ' -f1)

cat > "$DEST/README.md" <<MD
# Vendored JavaScript

Fetched from the npm registry by \`scripts/vendor-js.sh\` (do not edit by hand).

| file | package | version | licence | sha256 |
| --- | --- | --- | --- | --- |
| htmx.min.js | htmx.org | ${HTMX_VERSION} | ${LICENSE_ID} (see htmx.LICENSE) | ${SHA} |

Our own script (\`../app.js\`) does the live updates over the manager's server-sent
events; htmx only posts the action buttons and swaps page fragments.
MD
echo "vendored htmx.org ${HTMX_VERSION} (${LICENSE_ID}) into $DEST"
