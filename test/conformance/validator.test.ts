import { describe, expect, it } from 'vitest';
import { SPEC_DIR, spec } from './spec.js';

/** Guards against a validator that accepts everything (e.g. unresolved refs). */
describe('spec validator self-check', () => {
  it(`reads the official spec from ${SPEC_DIR}`, () => {
    expect(spec.ops.size).toBeGreaterThan(50);
  });

  it('rejects non-conforming bodies and resolves cross-file refs', () => {
    expect(spec.responseErrors('get-message', 200, {})).not.toEqual([]);
    expect(spec.responseErrors('get-access-token', 200, { access_token: 'x' })).not.toEqual([]); // userId required
    expect(spec.responseErrors('create-conversation', 201, { success: true, conversation: { id: 1 } })).not.toEqual([]);
    expect(spec.responseErrors('get-contact', 401, { statusCode: 401, message: 'x', error: 'Unauthorized' })).toEqual(
      [],
    );
    expect(
      spec.responseErrors('get-contact', 422, { statusCode: 422, message: 'not-array', error: 'Unprocessable Entity' }),
    ).not.toEqual([]);
    expect(
      spec.requestErrors('update-message-status', { body: { status: 'nope' }, headers: { Version: '2021-04-15' } }),
    ).not.toEqual([]);
    expect(
      spec.requestErrors('update-message-status', { body: { status: 'read' }, headers: { Version: '2021-07-28' } }),
    ).not.toEqual([]);
    // SOURCE.md defect patched in memory: direction is a string.
    expect(
      spec.requestErrors('add-an-inbound-message', {
        body: { type: 'SMS', conversationId: 'c', contactId: 'x', conversationProviderId: 'p', direction: 'inbound' },
        headers: { Version: '2021-04-15' },
      }),
    ).toEqual([]);
  });
});
