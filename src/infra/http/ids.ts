/**
 * Ids that arrive in paths and query strings (GHL location/company ids, our own ids) are checked against a known
 * alphabet and length before anything uses them: anything else (NUL bytes, control characters, 10 kB strings) gets
 * a 400 naming the parameter instead of reaching the database. GHL ids are 20–24 alphanumerics; `_` and `-` are
 * allowed for ids of other systems and tests.
 */
export const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
