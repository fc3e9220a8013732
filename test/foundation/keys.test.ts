import { describe, expect, it } from 'vitest';
import { installationId } from '../../src/platform/installations/index.js';
import {
  companyKey,
  isCompanyKey,
  isLocationKey,
  isResourceKey,
  locationKey,
  orderingKeys,
  resourceKey,
} from '../../src/platform/keys.js';

describe('resource keys', () => {
  it('an installation id is the job scope of its resource (pausing on re-authorization relies on it)', () => {
    expect(installationId({ locationId: 'L1' })).toBe(locationKey('L1'));
    expect(installationId({ companyId: 'C1' })).toBe(companyKey('C1'));
    expect(resourceKey({ locationId: 'L1', companyId: 'C1' })).toBe(locationKey('L1'));
    expect(resourceKey({ companyId: 'C1' })).toBe(companyKey('C1'));
    expect(resourceKey({})).toBeUndefined();
  });

  it('tells keys from bare ids and location keys from company keys', () => {
    expect(isLocationKey(locationKey('L1'))).toBe(true);
    expect(isCompanyKey(locationKey('L1'))).toBe(false);
    expect(isCompanyKey(companyKey('C1'))).toBe(true);
    expect(isResourceKey('L1')).toBe(false);
    expect(orderingKeys.contact('L1', 'c1').startsWith(locationKey('L1'))).toBe(true);
  });
});
