/* fhir_hapi_diff — differential check of the FHIR readers and FHIRPath
 * against output written by HAPI FHIR (see tests/bench/hapi-fhir/). */
#ifndef HB_FHIR_HAPI_DIFF_H
#define HB_FHIR_HAPI_DIFF_H

#include <stdio.h>

struct fhir_hapi_stats {
	unsigned resources;     /* NN-Type.json/.xml/.expected triples */
	unsigned trees_equal;   /* tree from XML == tree from JSON */
	unsigned trees_div_ws;  /* equal once whitespace between div tags is ignored */
	unsigned expressions;
	unsigned compared;      /* (resource, expression) pairs HAPI answered */
	unsigned matched;       /* ... where our answer is the same */
	unsigned hapi_err;      /* pairs HAPI refused */
	unsigned nonempty;      /* matched answers that are not empty */
	unsigned nontrivial_exprs; /* expressions with a non-empty matched answer */
};

/* Check every resource of dir against the expressions in exprs_path; each
 * difference and a summary are written to log. Returns 0 if everything
 * matches, 1 on a difference, -1 if the inputs cannot be read. */
int fhir_hapi_diff(const char *dir, const char *exprs_path, FILE *log,
		   struct fhir_hapi_stats *st);

#endif
