'use strict';
/*
 * bench.js: the DBOS Transact baseline of wf-server's durable-execution
 * bench (bench/run, bench/README.md). The same workflows as the engine's
 * test plugin (tests/plugins/engine_recorder.h), as a DBOS user writes them:
 *
 *   one-step      one no-op step                           → {ok: true}
 *   five-steps    five no-op steps                         → {ok: true}
 *   one-activity  {activity: "slow", input: {ms}}: one step that sleeps ms
 *                 (the kill -9 scenario holds 1,000 of them in flight)
 *
 * triggered the way a DBOS application exposes them: an HTTP handler that
 * calls DBOS.startWorkflow and answers once DBOS has recorded the workflow
 * (startWorkflow resolves after the workflow_status row is written; the
 * workflow then runs in this process). The handler takes wf-server's own
 * trigger, POST /projects/{id}/executions {"workflow", "input"}, and answers
 * 202 {"success": true, "executionId", "status"}, so the bench drives both
 * with the same client (bench_http fire) and reads both from SQL.
 *
 *   node bench.js --db URL --port P
 *
 * Listens on 127.0.0.1:P only (GET /health answers 200 once DBOS is
 * launched) and prints "listening on port P". DBOS keeps its state in the
 * database of URL (its system database). applicationVersion is fixed, so a
 * process started again after a kill -9 recovers the workflows the killed
 * one left pending (DBOS.launch recovers those of executor "local").
 */
const http = require('node:http');
const { DBOS } = require('@dbos-inc/dbos-sdk');

function arg(name) {
    const i = process.argv.indexOf(name);
    if (i < 0 || i + 1 >= process.argv.length) {
        console.error(`usage: node bench.js --db URL --port P (missing ${name})`);
        process.exit(2);
    }
    return process.argv[i + 1];
}

const dbUrl = arg('--db');
const port = Number(arg('--port'));

async function noop() {}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

const workflows = {
    'one-step': DBOS.registerWorkflow(
        async () => {
            await DBOS.runStep(noop, { name: 'noop' });
            return { ok: true };
        },
        { name: 'one-step' },
    ),
    'five-steps': DBOS.registerWorkflow(
        async () => {
            for (let i = 0; i < 5; i++) await DBOS.runStep(noop, { name: 'noop' });
            return { ok: true };
        },
        { name: 'five-steps' },
    ),
    'one-activity': DBOS.registerWorkflow(
        async (input) => {
            const ms = Number(input && input.input && input.input.ms) || 0;
            if (!input || input.activity !== 'slow') throw new Error('only the slow activity is here');
            await DBOS.runStep(() => sleep(ms), { name: 'slow' });
            return { result: { sleptMs: ms } };
        },
        { name: 'one-activity' },
    ),
};

function reply(res, status, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
}

async function trigger(req, res, body) {
    let msg;
    try {
        msg = JSON.parse(body);
    } catch (e) {
        reply(res, 400, { success: false, error: 'malformed JSON' });
        return;
    }
    const wf = workflows[msg && msg.workflow];
    if (wf === undefined) {
        reply(res, 404, { success: false, error: `workflow "${msg && msg.workflow}" not found` });
        return;
    }
    try {
        const handle = await DBOS.startWorkflow(wf)(msg.input === undefined ? null : msg.input);
        reply(res, 202, { success: true, executionId: handle.workflowID, status: 'PENDING' });
    } catch (e) {
        reply(res, 500, { success: false, error: String(e && e.message) });
    }
}

async function main() {
    DBOS.setConfig({
        name: 'wf-bench',
        systemDatabaseUrl: dbUrl,
        applicationVersion: 'wf-bench-1',
        runAdminServer: false,
        logLevel: 'warn',
    });
    await DBOS.launch();
    const server = http.createServer((req, res) => {
        if (req.method === 'GET' && req.url === '/health') {
            reply(res, 200, { status: 'ok' });
            return;
        }
        if (req.method !== 'POST' || !/^\/projects\/[^/]+\/executions$/.test(req.url)) {
            reply(res, 404, { success: false, error: 'not found' });
            return;
        }
        const chunks = [];
        let size = 0;
        req.on('data', (c) => {
            size += c.length;
            if (size <= 1 << 20) chunks.push(c);
        });
        req.on('end', () => {
            if (size > 1 << 20) reply(res, 413, { success: false, error: 'body too large' });
            else trigger(req, res, Buffer.concat(chunks).toString('utf8'));
        });
    });
    server.keepAliveTimeout = 120000;
    server.headersTimeout = 121000;
    server.listen(port, '127.0.0.1', () => console.log(`listening on port ${server.address().port}`));
    const stop = async () => {
        server.close();
        await DBOS.shutdown();
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
