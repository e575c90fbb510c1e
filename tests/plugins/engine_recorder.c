/*
 * engine_recorder.c: version 1 of the plugin "engine-recorder", the run
 * engine's test plugin. Its activities leave a trace of every invocation in
 * files of a directory the test names (record: one line per call in
 * <dir>/invocations.log), so that tests of durable execution can count what
 * ran where and how often: steps in order, sleeps, signal waits, retries,
 * failures, non-determinism, the clock, large values, cancellation, and the
 * benchmark's one-step and five-step workflows. The code, and the list of
 * names with their inputs and outputs, are in engine_recorder.h, shared with
 * engine_recorder_v2.c.
 */
#define ER_VERSION 1
#include "engine_recorder.h"
