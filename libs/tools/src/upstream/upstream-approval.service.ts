import { Injectable } from '@nestjs/common';
import { Actor, AppException, Principal } from '@app/core';
import { CatalogSync } from './catalog-sync';
import { ToolPin, UpstreamPinStore } from './upstream-pin.store';
import { UpstreamFeatureService } from './upstream-features.service';
import { UpstreamRegistry } from './upstream.registry';

/**
 * An administrator's review of a changed upstream definition. Approving records the new pin and
 * its audit entry in one transaction, then brings this replica's provider and the catalogue up to
 * date before answering, so the tool is enabled again (unless an admin override says otherwise)
 * when the response arrives.
 */
@Injectable()
export class UpstreamApprovalService {
  constructor(
    private readonly pins: UpstreamPinStore,
    private readonly registry: UpstreamRegistry,
    private readonly sync: CatalogSync,
    private readonly features: UpstreamFeatureService,
  ) {}

  async view(toolId: string): Promise<ToolPin> {
    const pin = await this.pins.find(toolId);
    if (!pin) throw AppException.notFound('No upstream tool definition is pinned under this id');
    return pin;
  }

  async approve(actor: Principal, toolId: string, definitionHash: string, client: Actor): Promise<ToolPin> {
    const outcome = await this.pins.approve(actor, toolId, definitionHash, client);
    if (outcome.changed) {
      await Promise.all(this.registry.all().map((provider) => provider.refreshApprovals([toolId])));
      // A federated prompt or resource template (pin keys prompt/… and template/…) follows at once too.
      await this.features.refreshApprovals([toolId]);
      await this.sync.request();
    }
    return outcome.pin;
  }
}
