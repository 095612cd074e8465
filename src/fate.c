#include "fate.h"

struct fate fate_decide(const struct fate_policy *pol, int readable, enum map_result r)
{
	struct fate f = { FATE_PUBLISH, 0, "map", FATE_COUNT_PUBLISHED };
	if (!readable) {
		f.kind = FATE_REFUSE;
		f.deadletter = pol->deadletter;
		f.stage = "parse";
		f.count = FATE_COUNT_REJECTED_PARSE;
		return f;
	}
	switch (r) {
	case MAP_OK:
		return f;
	case MAP_UNMATCHED:
		switch (pol->unmatched) {
		case MAP_UNMATCHED_REJECT:
			f.kind = FATE_REFUSE;
			f.deadletter = pol->deadletter;
			f.count = FATE_COUNT_REJECTED_UNMATCHED;
			return f;
		case MAP_UNMATCHED_DEADLETTER:
			f.kind = FATE_FILTER;
			f.deadletter = 1; /* the policy asks for it by name */
			f.count = FATE_COUNT_FILTERED;
			return f;
		case MAP_UNMATCHED_FILTER:
		default:
			f.kind = FATE_FILTER;
			f.count = FATE_COUNT_FILTERED;
			return f;
		}
	case MAP_REJECTED:
	case MAP_ERROR:
	default:
		f.kind = FATE_REJECT;
		f.deadletter = pol->deadletter;
		f.count = FATE_COUNT_REJECTED_MAP;
		return f;
	}
}

const char *fate_kind_name(enum fate_kind k)
{
	static const char *const names[] = { "publish", "filter", "reject", "refuse" };
	return (unsigned)k < 4 ? names[k] : "?";
}
