/**
 * `Version` header per endpoint family (declared per operation in the official specs; docs/ghl-behaviour.md#api-versions).
 * /oauth/token declares none. First match wins.
 */
const TABLE: Array<[RegExp, string | null]> = [
  [/^\/oauth\/token$/, null],
  [/^\/oauth\//, '2021-07-28'],
  [/^\/conversations\/messages\/email\//, null],
  [/^\/conversations(\/|$)/, '2021-04-15'],
  [/^\/contacts(\/|$)/, '2021-07-28'],
  [/^\/locations(\/|$)/, '2021-07-28'],
  [/^\/custom-fields(\/|$)/, '2021-07-28'],
  [/^\/opportunities(\/|$)/, '2021-07-28'],
  [/^\/marketplace\/billing\/charges/, null],
  [/^\/marketplace\/app\//, '2021-07-28'],
];

export function versionFor(path: string): string | null {
  for (const [re, v] of TABLE) if (re.test(path)) return v;
  return '2021-07-28';
}
