#!/usr/bin/env bash
# Refresh the console's third-party browser assets (served by central itself: no CDN, works on an
# operations-center network without Internet). Run by a maintainer when moving to a new release,
# never at run time: the files are committed with their sha256 in central/static/vendor/SHA256SUMS
# (tests/unit/test_vendored_assets.py checks them, and the Swagger UI integrity hashes).
set -euo pipefail
LEAFLET=1.9.4
CHARTJS=4.5.1
SWAGGER=5.35.0   # also SWAGGER_UI_VERSION and the two SRI hashes in central/web/docs.py
cd "$(dirname "$0")/.."
dest=central/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "leaflet@$LEAFLET" "chart.js@$CHARTJS" "swagger-ui-dist@$SWAGGER" >/dev/null)
for pkg in "leaflet-$LEAFLET" "chart.js-$CHARTJS" "swagger-ui-dist-$SWAGGER"; do
  mkdir -p "$work/$pkg" && tar xzf "$work/$pkg.tgz" -C "$work/$pkg"
done
rm -rf "$dest" && mkdir -p "$dest"
copy() { mkdir -p "$dest/$2" && cp "$work/$1" "$dest/$2/"; }
copy "leaflet-$LEAFLET/package/dist/leaflet.js" "leaflet-$LEAFLET"
copy "leaflet-$LEAFLET/package/dist/leaflet.css" "leaflet-$LEAFLET"
copy "leaflet-$LEAFLET/package/LICENSE" "leaflet-$LEAFLET"
for img in "$work/leaflet-$LEAFLET/package/dist/images/"*.png; do copy "${img#"$work"/}" "leaflet-$LEAFLET/images"; done
copy "chart.js-$CHARTJS/package/dist/chart.umd.min.js" "chart.js-$CHARTJS"
copy "chart.js-$CHARTJS/package/LICENSE.md" "chart.js-$CHARTJS"
copy "swagger-ui-dist-$SWAGGER/package/swagger-ui-bundle.js" "swagger-ui-$SWAGGER"
copy "swagger-ui-dist-$SWAGGER/package/swagger-ui.css" "swagger-ui-$SWAGGER"
copy "swagger-ui-dist-$SWAGGER/package/LICENSE" "swagger-ui-$SWAGGER"
(cd "$dest" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
echo "vendored into $dest:" && cat "$dest/SHA256SUMS"
