/*
 * names.h - stored member names matched to a machine's own spelling.
 *
 * a-h/stream's default store (no codec tag) writes Go field names: a state
 * item holds Balance, WinChance, IsCoinInSlot where eddy's slot machine
 * saves balance, winChance, isCoinInSlot. Its decoder (aws-sdk-go-v2
 * attributevalue) matches an attribute to a struct field by exact name
 * first and, failing that, without regard to case. eddy does the same for a
 * stored state before the machine's state_load sees it: the field names are
 * those of the machine's own saved form of a fresh state (the "model",
 * state_save(state_new(id))), so every machine gets this without writing
 * anything. The state is written back in the machine's spelling.
 *
 * This module does no I/O and knows nothing of DynamoDB.
 */
#ifndef EDDY_CORE_NAMES_H
#define EDDY_CORE_NAMES_H

#include <cjson/cJSON.h>

#include "base/err.h"

/*
 * Rename, in place, each member of obj that matches a member of model only
 * without regard to case (ASCII letters) to model's spelling; members of
 * nested objects too, where model holds an object at the same place (or an
 * array whose first element is an object, the model of every object in
 * obj's array). A member that matches exactly keeps its name, and an exact
 * match wins: a member "Balance" next to "balance" is left as it is.
 * Members that match nothing are left as they are. Two members that both
 * match one field only without regard to case give EDDY_EPARSE naming both
 * (a-h/stream's decoder would take either, by map order). model NULL or not
 * an object: nothing to do.
 */
EDDY_MUST_USE eddy_err eddy_names_fold(cJSON *obj, const cJSON *model, struct eddy_error *err);

/*
 * The member of obj named name as a-h/stream's decoder finds it: the exact
 * name, else the first that matches without regard to case. NULL when none.
 */
const cJSON *eddy_names_find(const cJSON *obj, const char *name);

#endif
