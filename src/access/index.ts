export { AccessControl } from './access-control';
export type { AccessControlOptions, Credentials } from './access-control';
export { ModelGlobs, PRIORITIES, SCOPES, mayUseModel } from './client';
export type { Client, Priority, Quota, Scope } from './client';
export { KeysFileError, parseKeysFile, sha256Hex } from './keys-file';
export type { JwtOptions } from './jwt';
export { QuotaEnforcer, requestPolicy } from './quota';
export type { QuotaOptions, QuotaState } from './quota';
