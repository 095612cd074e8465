#!/usr/bin/env python3
"""Write a FHIR JSON resource as FHIR XML (R4 rules: value attributes,
`_name` ids/extensions, url attribute on extensions, narrative div as XHTML,
resources wrapped in their holder element). Used to make benchmark fixtures
whose XML and JSON forms are the same resource; the unit tests check that
the bridge reads both into equal trees."""
import json
import sys
from xml.sax.saxutils import escape, quoteattr


def prim(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return v


def elem(name, v, ext, out, ind):
    pad = "  " * ind
    if isinstance(v, dict) and "resourceType" in v:
        out.append(f"{pad}<{name}>")
        resource(v, out, ind + 1, False)
        out.append(f"{pad}</{name}>")
    elif isinstance(v, dict):
        attrs = ""
        if "id" in v:
            attrs += f" id={quoteattr(v['id'])}"
        if "url" in v and name in ("extension", "modifierExtension"):
            attrs += f" url={quoteattr(v['url'])}"
        inner = []
        children(v, inner, ind + 1, skip=("id", "url") if "url" in attrs else ("id",))
        if inner:
            out.append(f"{pad}<{name}{attrs}>")
            out.extend(inner)
            out.append(f"{pad}</{name}>")
        else:
            out.append(f"{pad}<{name}{attrs}/>")
    else:
        attrs = ""
        if ext and "id" in ext:
            attrs += f" id={quoteattr(ext['id'])}"
        if v is not None:
            attrs += f" value={quoteattr(prim(v))}"
        inner = []
        if ext:
            children({k: x for k, x in ext.items() if k != "id"}, inner, ind + 1)
        if inner:
            out.append(f"{pad}<{name}{attrs}>")
            out.extend(inner)
            out.append(f"{pad}</{name}>")
        else:
            out.append(f"{pad}<{name}{attrs}/>")


def children(obj, out, ind, skip=()):
    keys = [k for k in obj if k not in skip and k != "resourceType"]
    seen = set()
    for k in keys:
        base = k[1:] if k.startswith("_") else k
        if base in seen:
            continue
        seen.add(base)
        v, ext = obj.get(base), obj.get("_" + base)
        if base == "div":
            out.append("  " * ind + v)
        elif isinstance(v, list) or isinstance(ext, list):
            n = max(len(v or []), len(ext or []))
            for i in range(n):
                vi = v[i] if v and i < len(v) else None
                ei = ext[i] if ext and i < len(ext) else None
                elem(base, vi, ei, out, ind)
        else:
            elem(base, v, ext, out, ind)


def resource(r, out, ind, top):
    ns = ' xmlns="http://hl7.org/fhir"' if top else ""
    out.append("  " * ind + f"<{r['resourceType']}{ns}>")
    children(r, out, ind + 1)
    out.append("  " * ind + f"</{r['resourceType']}>")


def main():
    r = json.load(open(sys.argv[1]))
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    resource(r, out, 0, True)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
