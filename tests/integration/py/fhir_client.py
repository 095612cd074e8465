"""Interop: a FHIR client built on fhir.resources (pydantic FHIR R4B models)
and requests POSTs to hl7bridge's [fhir] endpoint and reads its answers back
into FHIR models.

    python fhir_client.py BASE_URL RUN_ID

Exits 0 when every answer is what a FHIR client expects; prints one JSON line
with what it saw.
"""
import json
import sys

import requests
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.subscriptionstatus import SubscriptionStatus

base, run = sys.argv[1].rstrip("/"), sys.argv[2]
s = requests.Session()  # keep-alive, as a FHIR client library does
H = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
seen = {}


def patient(pid):
    return Patient.model_validate({
        "resourceType": "Patient", "id": pid,
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": pid}],
        "name": [{"family": "Interop", "given": ["Client"]}], "gender": "other"})


def check(cond, what):
    if not cond:
        print(json.dumps({"failed": what, "seen": seen}))
        sys.exit(1)


r = s.get(base + "/metadata", headers=H)
check(r.status_code == 200, "metadata status")
cs = CapabilityStatement.model_validate_json(r.content)
seen["metadata"] = cs.fhirVersion

p = patient(run + "-p1")
r = s.post(base + "/Patient", data=p.model_dump_json(), headers=H)
check(r.status_code == 201, "create %d %s" % (r.status_code, r.text))
oo = OperationOutcome.model_validate_json(r.content)
seen["create"] = oo.issue[0].diagnostics

r = s.post(base + "/Patient", data=p.model_dump_json(), headers={**H, "X-Request-Id": run + "-retry"})
check(r.status_code == 200 and r.headers.get("X-Request-Id") == run + "-retry", "resend")
seen["resend"] = OperationOutcome.model_validate_json(r.content).issue[0].diagnostics

tx = Bundle.model_validate({
    "resourceType": "Bundle", "type": "transaction",
    "entry": [{"fullUrl": "urn:uuid:%d" % i, "resource": json.loads(patient("%s-t%d" % (run, i)).model_dump_json()),
               "request": {"method": "POST", "url": "Patient"}} for i in range(3)]})
r = s.post(base, data=tx.model_dump_json(), headers=H)
check(r.status_code == 200, "transaction %d %s" % (r.status_code, r.text))
resp = Bundle.model_validate_json(r.content)
check(resp.type == "transaction-response" and len(resp.entry) == 3, "transaction-response")
seen["transaction"] = [e.response.status for e in resp.entry]

# a MedicationRequest the mapping rejects (no subject: not even valid FHIR,
# so it is sent as plain JSON)
bad = {"resourceType": "MedicationRequest", "id": run + "-bad", "status": "active", "intent": "order",
       "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                 "code": "1049502"}]}}
r = s.post(base + "/MedicationRequest", data=json.dumps(bad), headers=H)
check(r.status_code == 422, "reject %d" % r.status_code)
oo = OperationOutcome.model_validate_json(r.content)
check(oo.issue[0].severity == "error" and oo.issue[0].expression == ["MedicationRequest"], "reject outcome")
seen["reject"] = oo.issue[0].diagnostics

st = SubscriptionStatus.model_validate({
    "resourceType": "SubscriptionStatus", "status": "active", "type": "heartbeat",
    "subscription": {"reference": "Subscription/interop"}})
hb = {"resourceType": "Bundle", "type": "subscription-notification",
      "entry": [{"fullUrl": "urn:uuid:s", "resource": json.loads(st.model_dump_json())}]}
r = s.post(base, data=json.dumps(hb), headers=H)
check(r.status_code == 200, "heartbeat %d" % r.status_code)
seen["heartbeat"] = OperationOutcome.model_validate_json(r.content).issue[0].diagnostics

ev = dict(hb)
ev["entry"] = [{"fullUrl": "urn:uuid:s", "resource": dict(json.loads(st.model_dump_json()), type="event-notification")},
               {"fullUrl": "urn:uuid:p", "resource": json.loads(patient(run + "-sub").model_dump_json())}]
r = s.post(base, data=json.dumps(ev), headers=H)
check(r.status_code == 200, "event-notification %d" % r.status_code)
seen["event"] = OperationOutcome.model_validate_json(r.content).issue[0].diagnostics
print(json.dumps(seen))
