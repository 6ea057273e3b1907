export { InferService } from './infer-service';
export type {
  InferCall,
  InferResult,
  InferServiceDeps,
  MessageInferCall,
  MessageInferResult,
  ModelLoader,
  Protocol,
} from './infer-service';
export { ControlService } from './control-service';
export type { ControlServiceDeps, CallMeta } from './control-service';
export { mergeIndexes, mergeModelStats } from './merge';
export { GenerateService } from './generate-service';
export type {
  GenerateCall,
  GenerateAnswer,
  EventSink,
  GenerateServiceDeps,
} from './generate-service';
export { SettingsService } from './settings-service';
export type { SettingsAnswer, SettingsServiceDeps } from './settings-service';
