#!/usr/bin/env bash
# The README's walk-through as one script: a lead from a web form post to Closed Won with
# an account manager. Run it against `make run` (defaults below) from the repository root:
#   bash docs/walkthrough.sh
# The cross-service tests run this same script against their own ports.
set -euo pipefail

INTAKE=${INTAKE:-http://127.0.0.1:8001}
SCORING=${SCORING:-http://127.0.0.1:8002}
ROUTING=${ROUTING:-http://127.0.0.1:8003}
DEALS=${DEALS:-http://127.0.0.1:8004}
WEBHOOKS=${WEBHOOKS:-http://127.0.0.1:8005}
CONSOLE=${CONSOLE:-http://127.0.0.1:8080}
DATA_DIR=${DATA_DIR:-var}
LEADFLOW=${LEADFLOW:-.venv/bin/leadflow}
PY=${PY:-.venv/bin/python}
EMAIL=${EMAIL:-jane.doe@bigcorp.com}

# json FIELD: print one field of the JSON document on stdin (a[0].b style paths allowed).
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }
# wait_for CMD...: retry a command until it succeeds (events travel asynchronously).
wait_for() { for _ in $(seq 1 100); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.3; done; "$@"; }

ADMIN=$("$LEADFLOW" token --role admin --sub admin)
WEB=$("$LEADFLOW" token --role integration --sub website)
MANAGER=$("$LEADFLOW" token --role manager --sub mgr-maya)
FORM_KEY=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["form_key"])' \
  "$DATA_DIR/demo-form.json")

echo "== 0. A sales tool subscribes to every event (signed webhooks)"
curl -sf -X POST "$WEBHOOKS/v1/webhooks" -H "Authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' \
  -d "{\"url\": \"${HOOK_URL:-https://crm.example.com/leadflow}\", \"event_types\": [\"*\"], \"description\": \"CRM\"}"
echo

echo "== 1. A visitor posts the website's contact form"
LEAD=$(curl -sf -X POST "$INTAKE/v1/forms/$FORM_KEY/submit" \
  -H 'Origin: http://localhost:3000' -H 'Accept: application/json' \
  --data-urlencode "email=$EMAIL" -d first_name=Jane -d last_name=Doe \
  -d company=BigCorp --data-urlencode 'title=VP Engineering' -d country=US \
  -d employees=2500 -d industry=software -d utm_source=google -d utm_campaign=q4-launch \
  -d consent_marketing=on | json '["lead_id"]')
echo "lead $LEAD"

echo "== 2. scoring explains why it is an MQL"
wait_for sh -c "curl -sf '$SCORING/v1/scores/$LEAD' -H 'Authorization: Bearer $MANAGER' | grep -q '\"mql\":true'"
curl -sf "$SCORING/v1/scores/$LEAD" -H "Authorization: Bearer $MANAGER"
echo

echo "== 3. routing assigned an SDR by territory, with the reason and an SLA"
wait_for sh -c "curl -sf '$ROUTING/v1/assignments/$LEAD' -H 'Authorization: Bearer $MANAGER' | grep -q '\"sdr\":\"sdr-'"
SDR=$(curl -sf "$ROUTING/v1/assignments/$LEAD" -H "Authorization: Bearer $MANAGER" | json '["owners"]["sdr"]')
curl -sf "$ROUTING/v1/assignments/$LEAD" -H "Authorization: Bearer $MANAGER" | json '["history"][0]["reason"]'
SDR_TOKEN=$("$LEADFLOW" token --role sdr --sub "$SDR")
curl -sf "$ROUTING/v1/queue" -H "Authorization: Bearer $SDR_TOKEN"
echo

echo "== 4. $SDR accepts and qualifies (BANT); routing hands the lead to an AE"
curl -sf -X POST "$ROUTING/v1/leads/$LEAD/accept" -H "Authorization: Bearer $SDR_TOKEN" >/dev/null
AE=$(curl -sf -X POST "$ROUTING/v1/leads/$LEAD/qualify" -H "Authorization: Bearer $SDR_TOKEN" \
  -H 'content-type: application/json' \
  -d '{"framework": "bant", "budget": "120k USD", "authority": "VP Engineering", "need": "lead routing", "timeline": "this quarter"}' \
  | json '["owners"]["ae"]')
echo "AE $AE"
AE_TOKEN=$("$LEADFLOW" token --role ae --sub "$AE")

echo "== 5. deals opened the AE's deal; the AE works it to Closed Won"
wait_for sh -c "curl -sf '$DEALS/v1/deals?owner=$AE' -H 'Authorization: Bearer $AE_TOKEN' | grep -q '$LEAD'"
DEAL=$(curl -sf "$DEALS/v1/deals?owner=$AE" -H "Authorization: Bearer $AE_TOKEN" \
  | "$PY" -c 'import json,sys; print([d["deal_id"] for d in json.load(sys.stdin)["deals"] if d["lead_id"] == sys.argv[1]][0])' "$LEAD")
for STAGE in demo proposal negotiation; do
  curl -sf -X PATCH "$DEALS/v1/deals/$DEAL" -H "Authorization: Bearer $AE_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"stage\": \"$STAGE\", \"amount\": \"48000.00\", \"currency\": \"USD\"}" | json '["stage"]'
done
curl -sf -X POST "$DEALS/v1/deals/$DEAL/close" -H "Authorization: Bearer $AE_TOKEN" \
  -H 'content-type: application/json' -d '{"outcome": "won", "reason": "best routing fit"}' \
  | json '["stage"]'

echo "== 6. routing handed the won account to an account manager"
wait_for sh -c "curl -sf '$ROUTING/v1/assignments/$LEAD' -H 'Authorization: Bearer $MANAGER' | grep -q '\"am\":\"am-'"
curl -sf "$ROUTING/v1/assignments/$LEAD" -H "Authorization: Bearer $MANAGER" | json '["owners"]'

echo "== 7. The forecast and the ops funnel"
curl -sf "$DEALS/v1/forecast?period=$("$PY" -c 'import datetime as d; t=d.date.today(); print(f"{t.year}-Q{(t.month-1)//3+1}")')&owner=$AE" \
  -H "Authorization: Bearer $MANAGER"
echo
curl -sf "$CONSOLE/v1/funnel" -H "Authorization: Bearer $MANAGER"
echo
echo "== done: lead $LEAD went from a form post to Closed Won with an account manager"
