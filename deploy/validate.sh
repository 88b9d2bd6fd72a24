#!/usr/bin/env bash
# Validate the deployment files: config examples, the systemd units, the
# kustomize base and its monitoring component, the alert rules (promtool) and
# the Dockerfile. Runs every check whose tools exist (and
# installs the missing ones it can: pip packages, Debian packages when root),
# says what it ran and what it skipped, and exits non-zero on any failure.
#
#   deploy/validate.sh                       # from anywhere; CI calls it from .ci/run
#   CLIQ_SYNC_BIN=path/to/cliq-sync deploy/validate.sh   # binary for check-config
#   VALIDATE_REQUIRE_ALL=1 deploy/validate.sh            # a skipped check is a failure
#   VALIDATE_NO_INSTALL=1 deploy/validate.sh             # never install anything
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cliq-sync-validate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

UNIT=deploy/systemd/cliq-sync.service
TEMPLATE=deploy/systemd/cliq-sync@.service
INSTANCE=example                  # the instance name the template is checked as
MONDIR=deploy/monitoring
DROPIN=deploy/systemd/ops-group.conf
SYSUSERS=deploy/systemd/cliq-sync.sysusers.conf
KDIR=deploy/kubernetes
HR_HEADER='email_id,first_name,last_name,employee_id,extension,work_location,department,designation,reporting_to_email,mobile'
K8S_VERSIONS=(1.28.0 "")          # "" = the newest schema kubernetes-validate ships
SECURITY_THRESHOLD=20             # systemd-analyze security exposure, in tenths (2.0)

PASSED=() SKIPPED=() FAILED=()
say()  { printf '%s\n' "$*"; }
run()  { say "  \$ $*"; "$@"; }
pass() { PASSED+=("$1"); say "PASS: $1"; }
skip() { SKIPPED+=("$1: $2"); say "SKIP: $1: $2"; }
fail() { FAILED+=("$1${2:+: $2}"); say "FAIL: $1${2:+: $2}"; }
section() { say ""; say "== $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
may_install() { [ -z "${VALIDATE_NO_INSTALL:-}" ]; }

PY=""
for p in python3 python; do
  if have "$p" && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then PY=$p; break; fi
done

# pip_ensure MODULE PACKAGE: import MODULE, installing PACKAGE from PyPI if needed.
pip_ensure() {
  [ -n "$PY" ] || return 1
  "$PY" -c "import $1" 2>/dev/null && return 0
  may_install || return 1
  "$PY" -m pip --version >/dev/null 2>&1 || return 1
  say "  (installing $2 from PyPI)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install --quiet "$2" 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
  "$PY" -c "import $1" 2>/dev/null
}

# apt_ensure COMMAND PACKAGE: COMMAND on PATH, installing the Debian PACKAGE if root.
apt_ensure() {
  have "$1" && return 0
  may_install && [ "$(id -u)" = 0 ] && have apt-get || return 1
  say "  (installing Debian package $2)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1; } \
    || return 1
  have "$1"
}

# ---------------------------------------------------------------- config
section "config: TOML syntax, documented keys, HR example files"
if [ -z "$PY" ]; then
  skip "config files" "no python3"
elif ! "$PY" -c 'import tomllib' 2>/dev/null && ! pip_ensure tomli tomli; then
  skip "config files" "no TOML parser (python >= 3.11 or tomli)"
else
  say "  \$ $PY - <HR header> config/cliq-sync.toml $KDIR/cliq-sync.toml config/hr.example.csv $KDIR/hr.csv"
  if "$PY" - "$HR_HEADER" config/cliq-sync.toml "$KDIR/cliq-sync.toml" \
      config/hr.example.csv "$KDIR/hr.csv" <<'PY'
import csv, re, sys
try:
    import tomllib
except ImportError:
    import tomli as tomllib
header, ref_path, k8s_path, *csvs = sys.argv[1:]
errors = []

def keys(doc):
    return {f"{s}.{k}" for s, t in doc.items() if isinstance(t, dict) for k in t}

docs = {}
for path in (ref_path, k8s_path):
    try:
        with open(path, "rb") as f:
            docs[path] = tomllib.load(f)
    except Exception as e:  # noqa: BLE001
        errors.append(f"{path}: {e}")
if not errors:
    # Every key the reference documents, set or commented out ("# key = ...").
    documented, section = set(), None
    for line in open(ref_path, encoding="utf-8"):
        m = re.match(r"^\s*\[([a-z_]+)\]", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^\s*#?\s*([a-z_]+)\s*=", line)
        if m and section:
            documented.add(f"{section}.{m.group(1)}")
    for path, doc in docs.items():
        for k in sorted(keys(doc) - documented):
            errors.append(f"{path}: key {k} is not documented in {ref_path}")
    k8s = docs[k8s_path]
    if k8s.get("server", {}).get("listen", "").split(":")[0] not in ("0.0.0.0", "[::]"):
        errors.append(f"{k8s_path}: [server] listen must accept connections from outside the pod")
for path in csvs:
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    if not rows or ",".join(rows[0]) != header:
        errors.append(f"{path}: header is not the documented one: {header}")
        continue
    emails = [r[0].lower() for r in rows[1:]]
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(rows[0]):
            errors.append(f"{path}:{n}: {len(r)} cells, header has {len(rows[0])}")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", r[0]):
            errors.append(f"{path}:{n}: email_id {r[0]!r} is not an email")
        if len(r) > 8 and r[8] and r[8].lower() not in emails:
            errors.append(f"{path}:{n}: reporting_to_email {r[8]} is not in the file")
    if len(set(emails)) != len(emails):
        errors.append(f"{path}: duplicate email_id")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
  then pass "config files (TOML syntax, keys documented, HR CSV header and rows)"
  else fail "config files"
  fi
fi

# ---------------------------------------------------------------- check-config
section "config: cliq-sync check-config (the real loader, unknown keys rejected)"
BIN=${CLIQ_SYNC_BIN:-}
if [ -z "$BIN" ]; then
  for c in target/release/cliq-sync target/debug/cliq-sync; do
    if [ -x "$c" ] && { [ -z "$BIN" ] || [ "$c" -nt "$BIN" ]; }; then BIN=$c; fi
  done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  skip "check-config" "no built binary (cargo build, or set CLIQ_SYNC_BIN)"
else
  say "  binary: $BIN"
  umask 077
  printf 'validate-client-secret\n' >"$TMP/client_secret"
  printf 'validate-refresh-token\n' >"$TMP/refresh_token"
  umask 022
  # config/cliq-sync.toml with the environment the systemd unit sets (%d is
  # the credentials directory): a misspelt CLIQ_SYNC__ variable is an unknown key.
  unit_env=()
  while IFS= read -r line; do
    v=${line#Environment=}
    v=${v//%d/$TMP}
    case $v in CLIQ_SYNC__MIRROR__PATH=*) continue ;; esac   # overridden below
    unit_env+=("$v")
  done < <(grep -E '^Environment=CLIQ_SYNC__' "$UNIT")
  unit_env+=("CLIQ_SYNC__MIRROR__PATH=$TMP/mirror.db" "CLIQ_SYNC__HR__SOURCE=$ROOT/config/hr.example.csv")
  say "  \$ env ${unit_env[*]} $BIN --config config/cliq-sync.toml check-config"
  if out=$(env -u RUST_LOG "${unit_env[@]}" "$BIN" --config config/cliq-sync.toml check-config 2>&1); then
    pass "check-config config/cliq-sync.toml (with the systemd unit's environment)"
  else
    say "$out" | sed 's/^/  /'
    fail "check-config config/cliq-sync.toml"
  fi
  # The same with the template unit's environment (%i = the instance).
  tpl_env=()
  while IFS= read -r line; do
    v=${line#Environment=}
    v=${v//%d/$TMP}; v=${v//%i/$INSTANCE}
    case $v in CLIQ_SYNC__MIRROR__PATH=*) continue ;; esac
    tpl_env+=("$v")
  done < <(grep -E '^Environment=CLIQ_SYNC__' "$TEMPLATE")
  tpl_env+=("CLIQ_SYNC__MIRROR__PATH=$TMP/mirror.db" "CLIQ_SYNC__HR__SOURCE=$ROOT/config/hr.example.csv")
  say "  \$ env ${tpl_env[*]} $BIN --config config/cliq-sync.toml check-config"
  if out=$(env -u RUST_LOG "${tpl_env[@]}" "$BIN" --config config/cliq-sync.toml check-config 2>&1); then
    pass "check-config config/cliq-sync.toml (with the template unit's environment)"
  else
    say "$out" | sed 's/^/  /'
    fail "check-config config/cliq-sync.toml (template unit)"
  fi
  # The Kubernetes config, with its mounts mapped to temporary files.
  k8s_env=("CLIQ_SYNC__CLIQ__CLIENT_SECRET_FILE=$TMP/client_secret"
           "CLIQ_SYNC__CLIQ__REFRESH_TOKEN_FILE=$TMP/refresh_token"
           "CLIQ_SYNC__MIRROR__PATH=$TMP/mirror.db"
           "CLIQ_SYNC__HR__SOURCE=$ROOT/$KDIR/hr.csv")
  say "  \$ env ${k8s_env[*]} $BIN --config $KDIR/cliq-sync.toml check-config"
  if out=$(env -u RUST_LOG "${k8s_env[@]}" "$BIN" --config "$KDIR/cliq-sync.toml" check-config 2>&1); then
    pass "check-config $KDIR/cliq-sync.toml"
  else
    say "$out" | sed 's/^/  /'
    fail "check-config $KDIR/cliq-sync.toml"
  fi
fi

# ---------------------------------------------------------------- systemd
section "systemd: systemd-analyze verify / security, sysusers"
if ! apt_ensure systemd-analyze systemd; then
  skip "systemd unit" "systemd-analyze not found and package systemd not installable"
else
  say "  $(systemd-analyze --version | head -1)"
  # verify resolves ExecStart=: check a copy whose binary is a stub at a
  # temporary path, next to the drop-in directory for the second run.
  mkdir -p "$TMP/unit/cliq-sync.service.d" "$TMP/bin"
  printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/cliq-sync"
  chmod 0755 "$TMP/bin/cliq-sync"
  sed "s|^ExecStart=/usr/local/bin/cliq-sync |ExecStart=$TMP/bin/cliq-sync |" "$UNIT" >"$TMP/unit/cliq-sync.service"
  if [ "$(grep -c "^ExecStart=$TMP/bin/cliq-sync " "$TMP/unit/cliq-sync.service")" != 1 ]; then
    fail "systemd verify" "$UNIT must have exactly one ExecStart=/usr/local/bin/cliq-sync ..."
  else
    # verify exits 0 on many errors ("Unknown key", "Failed to parse ...,
    # ignoring"): any line about our unit or drop-in counts as a failure.
    verify() {
      local label=$1 unit=${2:-$TMP/unit/cliq-sync.service} out rc=0
      say "  \$ systemd-analyze verify --man=no $unit   # $label"
      out=$(systemd-analyze verify --man=no "$unit" 2>&1) || rc=$?
      if [ -n "$out" ]; then say "$out" | sed "s|$TMP/unit/|$(dirname "$UNIT")/|g; s/^/  /"; fi
      if [ "$rc" != 0 ] || grep -q -e "$TMP/unit" -e 'cliq-sync' <<<"$out"; then
        fail "systemd-analyze verify ($label)"
      else
        pass "systemd-analyze verify ($label)"
      fi
    }
    security() {
      local label=$1 unit=${2:-$TMP/unit/cliq-sync.service} out rc=0
      say "  \$ systemd-analyze security --offline=yes --threshold=$SECURITY_THRESHOLD $unit   # $label"
      out=$(systemd-analyze security --offline=yes --threshold="$SECURITY_THRESHOLD" --no-pager \
              "$unit" 2>&1) || rc=$?
      say "  $(grep -m1 'Overall exposure level' <<<"$out" || echo "$out" | tail -3)"
      if [ "$rc" != 0 ]; then
        fail "systemd-analyze security ($label)" "exposure above $((SECURITY_THRESHOLD / 10)).$((SECURITY_THRESHOLD % 10))"
      else
        pass "systemd-analyze security ($label)"
      fi
    }
    sd_version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
    verify "$UNIT"
    if [ "${sd_version:-0}" -ge 250 ]; then security "$UNIT"; else skip "systemd-analyze security" "needs systemd >= 250 (have ${sd_version:-?})"; fi
    cp "$DROPIN" "$TMP/unit/cliq-sync.service.d/"
    verify "$UNIT + $(basename "$DROPIN")"
    if [ "${sd_version:-0}" -ge 250 ]; then security "$UNIT + $(basename "$DROPIN")"; fi
  fi
  # The template, checked as instance "$INSTANCE" (verify loads the template
  # file next to the instance name). The drop-in is not for it: its paths are
  # the single unit's.
  mkdir -p "$TMP/template"
  sed "s|^ExecStart=/usr/local/bin/cliq-sync |ExecStart=$TMP/bin/cliq-sync |" "$TEMPLATE" >"$TMP/template/cliq-sync@.service"
  if [ "$(grep -c "^ExecStart=$TMP/bin/cliq-sync --config /etc/cliq-sync/%i.toml run$" "$TMP/template/cliq-sync@.service")" != 1 ]; then
    fail "systemd verify" "$TEMPLATE must have exactly one ExecStart=/usr/local/bin/cliq-sync --config /etc/cliq-sync/%i.toml run"
  else
    verify "$TEMPLATE as cliq-sync@$INSTANCE" "$TMP/template/cliq-sync@$INSTANCE.service"
    if [ "${sd_version:-0}" -ge 250 ]; then security "$TEMPLATE as cliq-sync@$INSTANCE" "$TMP/template/cliq-sync@$INSTANCE.service"; fi
  fi
  # What the template must keep per instance, and the watchdog both units need.
  missing=()
  for want in 'StateDirectory=cliq-sync/%i' 'CLIQ_SYNC__MIRROR__PATH=/var/lib/cliq-sync/%i/mirror.db' \
              'LoadCredential=client_secret:/etc/cliq-sync/%i/client_secret' \
              'LoadCredential=refresh_token:/etc/cliq-sync/%i/refresh_token' 'WatchdogSec=' 'Type=notify'; do
    grep -qF "$want" "$TEMPLATE" || missing+=("$TEMPLATE: $want")
  done
  grep -q '^WatchdogSec=' "$UNIT" || missing+=("$UNIT: WatchdogSec=")
  if [ ${#missing[@]} -eq 0 ]; then
    pass "template unit per instance (config, state, credentials) and WatchdogSec= in both units"
  else
    printf '  missing %s\n' "${missing[@]}"; fail "systemd units: per-instance settings"
  fi
  if have systemd-sysusers; then
    mkdir -p "$TMP/sysroot/etc"
    say "  \$ systemd-sysusers --dry-run --root=<empty dir> $SYSUSERS"
    if systemd-sysusers --dry-run --root="$TMP/sysroot" "$ROOT/$SYSUSERS" >"$TMP/sysusers.log" 2>&1 \
       && ! grep -q -i -e ignoring -e 'failed' "$TMP/sysusers.log"; then
      pass "systemd-sysusers --dry-run $SYSUSERS"
    else
      sed 's/^/  /' "$TMP/sysusers.log"; fail "systemd-sysusers $SYSUSERS"
    fi
  else
    skip "sysusers" "systemd-sysusers not found"
  fi
fi

# ---------------------------------------------------------------- kubernetes
section "kubernetes: render the kustomize base, validate against the API schemas"
KV=()
if pip_ensure kubernetes_validate kubernetes-validate; then
  KV=("$PY" -m kubernetes_validate)
  say "  kubernetes-validate $("${KV[@]}" --version 2>/dev/null)"
fi
# kustomize >= 4 (the base uses `labels:`): standalone, or the one in kubectl.
RENDER=()
if have kustomize; then
  RENDER=(kustomize build "$KDIR")
elif have kubectl; then
  kz=$(kubectl version --client -o json 2>/dev/null | "${PY:-python3}" -c \
        'import json,sys; print(json.load(sys.stdin).get("kustomizeVersion",""))' 2>/dev/null || true)
  if [[ "$kz" =~ ^v([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 4 ]; then
    say "  kubectl $(kubectl version --client 2>/dev/null | head -1 | sed 's/^Client Version: //'), kustomize $kz"
    RENDER=(kubectl kustomize "$KDIR")
  else
    say "  kubectl found, but its kustomize (${kz:-unknown}) is older than v4"
  fi
fi
if [ ${#RENDER[@]} -gt 0 ]; then
  say "  \$ ${RENDER[*]}"
  if "${RENDER[@]}" >"$TMP/rendered.yaml" 2>"$TMP/render.err"; then
    pass "kustomize render ($(grep -c '^kind:' "$TMP/rendered.yaml") resources)"
  else
    sed 's/^/  /' "$TMP/render.err"; fail "kustomize render"
  fi
else
  skip "kustomize render" "no kustomize >= v4 (standalone or in kubectl); falling back to the single files"
fi

if [ ${#KV[@]} -eq 0 ]; then
  skip "kubernetes-validate" "not installable (needs python3 with pip and PyPI)"
else
  if [ -s "$TMP/rendered.yaml" ]; then
    targets=("$TMP/rendered.yaml" "$KDIR/secret.example.yaml")
  else
    # Fallback: each manifest on its own (the generated ConfigMap and the
    # kustomize labels are then not checked).
    targets=("$KDIR/deployment.yaml" "$KDIR/service.yaml" "$KDIR/pvc.yaml" "$KDIR/secret.example.yaml")
  fi
  for v in "${K8S_VERSIONS[@]}"; do
    args=(--strict --quiet)
    [ -n "$v" ] && args+=(-k "$v")
    say "  \$ kubernetes-validate ${args[*]} ${targets[*]/#$TMP\//<rendered>/}"
    rc=0
    "${KV[@]}" "${args[@]}" "${targets[@]}" >"$TMP/kv.log" 2>&1 || rc=$?
    sed "s|$TMP/||; s/^/  /" "$TMP/kv.log"
    if [ "$rc" = 0 ]; then
      pass "kubernetes-validate --strict against ${v:-the newest schema}"
    else
      fail "kubernetes-validate --strict against ${v:-the newest schema}"
    fi
  done
fi

# Semantics the schemas cannot see: the pieces must fit together.
if [ -s "$TMP/rendered.yaml" ] && [ -n "$PY" ] && pip_ensure yaml PyYAML; then
  if run "$PY" - "$TMP/rendered.yaml" "$KDIR/cliq-sync.toml" <<'PY'
import sys, yaml
try:
    import tomllib
except ImportError:
    import tomli as tomllib
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
conf = tomllib.load(open(sys.argv[2], "rb"))
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

check(sorted(by) == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"],
      f"resources: {sorted(by)}")
dep, = by["Deployment"]; svc, = by["Service"]; pvc, = by["PersistentVolumeClaim"]
cms = {d["metadata"]["name"]: d for d in by["ConfigMap"]}
cm = next(d for n, d in cms.items() if n.startswith("cliq-sync-config"))
hr_cm = cms.get("cliq-sync-hr")
spec = dep["spec"]; pod = spec["template"]["spec"]; c, = pod["containers"]
check(spec.get("replicas") == 1, "Deployment: replicas must be 1 (one SQLite writer)")
check(spec.get("strategy", {}).get("type") == "Recreate", "Deployment: strategy must be Recreate")
check(c.get("args") == ["--config", "/etc/cliq-sync/cliq-sync.toml", "run"], f"args: {c.get('args')}")
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
for k, want in [("runAsNonRoot", True), ("runAsUser", 10001), ("runAsGroup", 10001), ("fsGroup", 10001)]:
    check(psc.get(k) == want, f"pod securityContext.{k} must be {want}")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
res = c.get("resources", {})
check("memory" in res.get("limits", {}) and "memory" in res.get("requests", {}), "memory request and limit")
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
check(ports.get("metrics") == 9464, "container port metrics=9464")
check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness on /healthz")
check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness on /readyz")
listen = conf["server"]["listen"]
check(listen.rsplit(":", 1)[1] == str(ports.get("metrics")), f"[server] listen {listen} vs container port")
labels = spec["template"]["metadata"]["labels"]
check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), "selector vs pod labels")
check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selector vs pod labels")
sp, = svc["spec"]["ports"]
check(sp["name"] == "metrics" and sp["port"] == 9464 and sp["targetPort"] in ("metrics", 9464), f"Service port {sp}")
check(svc["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true", "prometheus.io/scrape")
check(svc["metadata"].get("annotations", {}).get("prometheus.io/port") == "9464", "prometheus.io/port")
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
def vol_at(path):
    best = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len, default=None)
    return (best, vols.get(mounts[best])) if best else (None, None)
m, v = vol_at(conf["mirror"]["path"])
check(v is not None and v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"],
      f"[mirror] path {conf['mirror']['path']} must be on the PVC")
check(pvc["spec"]["accessModes"] == ["ReadWriteOnce"], "PVC ReadWriteOnce")
m, v = vol_at("/etc/cliq-sync/cliq-sync.toml")
check(v is not None and v.get("configMap", {}).get("name") == cm["metadata"]["name"]
      and "cliq-sync.toml" in cm["data"], "/etc/cliq-sync/cliq-sync.toml must come from the generated ConfigMap")
# The HR file: a directory mount of a ConfigMap with a fixed name, so an
# update reaches the running pod (subPath mounts never see updates).
hr = conf["hr"]["source"]
m, v = vol_at(hr)
check(hr_cm is not None, "ConfigMap cliq-sync-hr (fixed name, disableNameSuffixHash) missing")
check(v is not None and v.get("configMap", {}).get("name") == "cliq-sync-hr"
      and hr_cm is not None and hr[len(m) + 1:] in hr_cm["data"], f"{hr} must come from ConfigMap cliq-sync-hr")
check(all("subPath" not in vm and "subPathExpr" not in vm for vm in c["volumeMounts"]),
      "no subPath mounts: they never receive ConfigMap updates")
for k in ("client_secret_file", "refresh_token_file"):
    path = conf["cliq"][k]
    m, v = vol_at(path)
    sec = (v or {}).get("secret")
    check(sec is not None and sec.get("defaultMode") == 0o400, f"{path} must be on a Secret volume, mode 0400")
    if sec:
        items = [i["path"] for i in sec.get("items", [])] or None
        check(items is None or path[len(m) + 1:] in items, f"{path}: no such item in the Secret volume")
check(pod.get("terminationGracePeriodSeconds", 30) >= 15, "terminationGracePeriodSeconds >= 15")
for e in errors:
    print("  " + e)
print(f"  {len(errors)} problem(s) in the rendered base")
sys.exit(1 if errors else 0)
PY
  then pass "kustomize base: pieces fit (mounts vs config paths, ports, selectors, security context)"
  else fail "kustomize base consistency"
  fi
elif [ -s "$TMP/rendered.yaml" ]; then
  skip "kustomize base consistency" "no python3 with PyYAML"
fi

# ---------------------------------------------------------------- monitoring
section "monitoring: promtool check/test rules, the kustomize component"
if ! apt_ensure promtool prometheus; then
  skip "promtool" "promtool not found and Debian package prometheus not installable"
else
  say "  $(promtool --version 2>&1 | head -1)"
  if run promtool check rules "$MONDIR/alerts.yml"; then pass "promtool check rules $MONDIR/alerts.yml"
  else fail "promtool check rules $MONDIR/alerts.yml"; fi
  if (cd "$MONDIR" && run promtool test rules alerts.test.yml); then pass "promtool test rules $MONDIR/alerts.test.yml"
  else fail "promtool test rules $MONDIR/alerts.test.yml"; fi
  # The PrometheusRule's groups as a rule file of their own.
  if [ -n "$PY" ] && pip_ensure yaml PyYAML; then
    "$PY" -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]))' \
      "$MONDIR/kubernetes/prometheusrule.yaml" >"$TMP/prometheusrule-groups.yml"
    if run promtool check rules "$TMP/prometheusrule-groups.yml"; then pass "promtool check rules (PrometheusRule spec)"
    else fail "promtool check rules (PrometheusRule spec)"; fi
  fi
fi
# An overlay in $TMP = the base + the component, as an operator would write it.
if [ ${#RENDER[@]} -gt 0 ]; then
  mkdir -p "$TMP/overlay"
  rel() { realpath --relative-to="$TMP/overlay" "$ROOT/$1"; }
  printf 'resources:\n  - %s\ncomponents:\n  - %s\n' "$(rel "$KDIR")" "$(rel "$MONDIR/kubernetes")" >"$TMP/overlay/kustomization.yaml"
  render=("${RENDER[@]}"); render[${#render[@]}-1]="$TMP/overlay"
  say "  \$ ${render[*]}   # base + $MONDIR/kubernetes"
  if "${render[@]}" >"$TMP/with-monitoring.yaml" 2>"$TMP/render.err"; then
    pass "kustomize render of base + monitoring component ($(grep -c '^kind:' "$TMP/with-monitoring.yaml") resources)"
    if [ -n "$PY" ] && pip_ensure yaml PyYAML; then
      if run "$PY" - "$TMP/with-monitoring.yaml" "$MONDIR/alerts.yml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], []).append(d)
errors = []
check = lambda cond, msg: cond or errors.append(msg)
sm = (by.get("ServiceMonitor") or [None])[0]
pr = (by.get("PrometheusRule") or [None])[0]
svc, = by["Service"]
check(sm is not None and pr is not None, "ServiceMonitor and PrometheusRule expected")
if sm:
    sel = sm["spec"]["selector"]["matchLabels"]
    check(all(svc["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()),
          f"ServiceMonitor selector {sel} does not match the Service's labels")
    ports = [p["name"] for p in svc["spec"]["ports"]]
    check(all(e.get("port") in ports for e in sm["spec"]["endpoints"]), "ServiceMonitor port not on the Service")
    check("cliq-sync" in svc["metadata"]["name"], "the job (= Service name) must contain cliq-sync for the alerts")
if pr:
    check(pr["spec"] == yaml.safe_load(open(sys.argv[2])), "PrometheusRule spec differs from alerts.yml")
for e in errors:
    print("  " + e)
print(f"  {len(errors)} problem(s) in the monitoring component")
sys.exit(1 if errors else 0)
PY
      then pass "monitoring component: ServiceMonitor selects the Service, PrometheusRule = alerts.yml"
      else fail "monitoring component consistency"
      fi
    fi
  else
    sed 's/^/  /' "$TMP/render.err"; fail "kustomize render of base + monitoring component"
  fi
else
  skip "monitoring component render" "no kustomize >= v4"
fi

# ---------------------------------------------------------------- docker
section "docker: parse deploy/Dockerfile with BuildKit's parser, check the context"
if pip_ensure dockerfile dockerfile; then
  if run "$PY" - deploy/Dockerfile .dockerignore <<'PY'
import fnmatch, os, sys
import dockerfile
cmds = dockerfile.parse_file(sys.argv[1])
ignore = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
errors = []
stages = [i for i, c in enumerate(cmds) if c.cmd == "FROM"]
final = cmds[stages[-1]:]
check = lambda cond, msg: cond or errors.append(msg)
check(len(stages) >= 2, "multi-stage build expected")
runs = " ".join(" ".join(c.value) for c in cmds[:stages[-1]] if c.cmd == "RUN")
check("cargo build --release --locked" in runs, "builder must run cargo build --release --locked")
user = [c.value[0] for c in final if c.cmd == "USER"]
check(user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0",
      f"final stage must end as a numeric non-root USER, has {user}")
ep = [c for c in final if c.cmd == "ENTRYPOINT"]
check(ep and ep[-1].json and list(ep[-1].value) == ["/usr/local/bin/cliq-sync"], "ENTRYPOINT [\"/usr/local/bin/cliq-sync\"]")
cmd = [c for c in final if c.cmd == "CMD"]
check(cmd and cmd[-1].json and list(cmd[-1].value) == ["--config", "/etc/cliq-sync/cliq-sync.toml", "run"], "CMD")
check(any(c.cmd == "EXPOSE" and "9464" in c.value for c in final), "EXPOSE 9464")
check(any(c.cmd == "COPY" and any(f.startswith("--from=") for f in c.flags) for c in final),
      "final stage must COPY the binary from the builder")
def ignored(path):
    return any(fnmatch.fnmatch(path, p.rstrip("/")) or path.startswith(p.rstrip("/") + "/") for p in ignore)
for need in ("Cargo.toml", "Cargo.lock", "src", "migrations"):
    check(os.path.exists(need), f"{need} missing from the build context")
    check(not ignored(need), f".dockerignore excludes {need}, which the build needs")
for out in ("target", ".git"):
    check(ignored(out), f".dockerignore should exclude {out}")
for c in cmds:
    if c.cmd in ("COPY", "ADD") and not any(f.startswith("--from=") for f in c.flags):
        for src in c.value[:-1]:
            check(src == "." or os.path.exists(src), f"line {c.start_line}: {c.cmd} source {src} does not exist")
for e in errors:
    print("  " + e)
print(f"  {len(cmds)} instructions, {len(stages)} stages, {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
PY
  then pass "Dockerfile parses; stages, USER, ENTRYPOINT/CMD, build context"
  else fail "Dockerfile"
  fi
else
  skip "Dockerfile parse" "python package 'dockerfile' not installable"
fi
skip "docker build" "not attempted: needs a container engine and the base images from a registry"

# ---------------------------------------------------------------- summary
section "summary"
for p in "${PASSED[@]}";  do say "  ran     $p"; done
for s in "${SKIPPED[@]}"; do say "  skipped $s"; done
for f in "${FAILED[@]}";  do say "  FAILED  $f"; done
status=0
[ ${#FAILED[@]} -eq 0 ] || status=1
# "docker build" is always skipped; any other skip fails under VALIDATE_REQUIRE_ALL.
if [ -n "${VALIDATE_REQUIRE_ALL:-}" ] && [ ${#SKIPPED[@]} -gt 1 ]; then
  say "  VALIDATE_REQUIRE_ALL is set and checks were skipped"
  status=1
fi
say "validate: ${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
exit "$status"
