export type ContextStatus = 'active' | 'archived';
export const CONTEXT_STATUSES: readonly ContextStatus[] = ['active', 'archived'];

/** A user's named workspace: a set of catalogue tools with settings and free-form metadata. */
export interface Context {
  id: string;
  userId: string;
  name: string;
  description: string;
  status: ContextStatus;
  metadata: Record<string, unknown>;
  tools: string[];
  settings: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}
