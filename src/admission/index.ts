export { AdmissionController } from './admission-controller';
export type {
  Permit,
  AdmissionStats,
  ByteReservation,
  ModelAdmissionStats,
} from './admission-controller';
export type {
  AdmissionOptions,
  AdmissionPriority,
  AdmissionHooks,
  AdmissionRejectReason,
  ModelLimits,
} from './admission-options';
export { ClientGoneError, isClientGoneError } from './client-gone-error';
