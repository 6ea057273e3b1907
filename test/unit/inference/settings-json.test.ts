import assert from 'node:assert/strict';
import { isProxyError } from '../../../src/errors';
import {
  logSettingsJson,
  logSettingsRequest,
  traceSettingsJson,
  traceSettingsRequest,
} from '../../../src/inference/settings-json';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isProxyError(err));
    assert.equal(err.code, 'INVALID_REQUEST');
    return err.message;
  }
  assert.fail('expected a refusal');
}

describe("settings JSON: Triton's HTTP form <-> its gRPC messages", () => {
  it('types log settings into the oneof Triton expects, leaving out nulls', () => {
    assert.deepEqual(
      logSettingsRequest({
        log_info: false,
        log_verbose_level: 2,
        log_format: 'ISO8601',
        log_file: null,
        future_flag: true,
      }),
      {
        log_info: { bool_param: false },
        log_verbose_level: { uint32_param: 2 },
        log_format: { string_param: 'ISO8601' },
        future_flag: { bool_param: true },
      },
    );
  });

  it('names the log setting whose value has the wrong type', () => {
    assert.match(
      refusal(() => logSettingsRequest({ log_error: 1 })),
      /'log_error' must be a boolean/,
    );
    assert.match(
      refusal(() => logSettingsRequest({ log_verbose_level: 1.5 })),
      /'log_verbose_level' must be an integer from 0 to 4294967295/,
    );
    assert.match(
      refusal(() => logSettingsRequest({ log_verbose_level: 2 ** 32 })),
      /'log_verbose_level'/,
    );
    assert.match(
      refusal(() => logSettingsRequest({ other: [1] })),
      /'other' must be a boolean/,
    );
  });

  it("writes log settings in Triton's key order whatever order the server's map came in", () => {
    const json = logSettingsJson({
      log_format: { string_param: 'default' },
      log_verbose_level: { uint32_param: 0 },
      log_error: { bool_param: true },
      log_warning: { bool_param: true },
      log_info: { bool_param: false },
      log_file: { string_param: '' },
    });
    assert.equal(
      JSON.stringify(json),
      '{"log_file":"","log_info":false,"log_warning":true,"log_error":true,"log_verbose_level":0,"log_format":"default"}',
    );
  });

  it('turns trace values into lists: a string is one value, null clears (an empty list)', () => {
    assert.deepEqual(
      traceSettingsRequest({
        trace_rate: '10',
        trace_level: ['TIMESTAMPS', 'TENSORS'],
        trace_count: null,
      }),
      {
        trace_rate: { value: ['10'] },
        trace_level: { value: ['TIMESTAMPS', 'TENSORS'] },
        trace_count: { value: [] },
      },
    );
    assert.match(
      refusal(() => traceSettingsRequest({ trace_rate: 10 })),
      /'trace_rate' must be a string/,
    );
    assert.match(
      refusal(() => traceSettingsRequest({ trace_level: ['OFF', 1] })),
      /'trace_level'/,
    );
  });

  it('writes trace_level as a list and every other trace setting as one string', () => {
    assert.equal(
      JSON.stringify(
        traceSettingsJson({
          trace_mode: { value: ['triton'] },
          trace_rate: { value: ['1000'] },
          trace_level: { value: ['OFF'] },
          trace_file: { value: [] },
        }),
      ),
      '{"trace_level":["OFF"],"trace_rate":"1000","trace_file":"","trace_mode":"triton"}',
    );
  });
});
