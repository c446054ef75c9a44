/**
 * React bindings for the Eddy client (`eddy-client/react`):
 *
 *   <EddyProvider client={eddy}> ... </EddyProvider>
 *   useChannel("chat:lobby", (event, data, msg) => ...)   // subscribe while mounted
 *   usePresence("chat:lobby")                              // the members, kept current
 *
 * Components that use the same channel share one subscription, which ends
 * when the last of them unmounts. `react` is a peer dependency (18 or 19).
 */
import { type ReactNode } from "react";
import type { Eddy } from "./client.js";
import type { Subscription, SubscriptionState } from "./subscription.js";
import type { Member, Message } from "./types.js";
export interface EddyProviderProps {
    /** The client the hooks below use; the provider does not close it. */
    client: Eddy;
    children?: ReactNode;
}
/** Makes `client` available to useEddy, useChannel and usePresence below it. */
export declare function EddyProvider({ client, children }: EddyProviderProps): import("react").FunctionComponentElement<import("react").ProviderProps<Eddy | null>>;
/** The client of the nearest EddyProvider. */
export declare function useEddy(): Eddy;
export type ChannelHandler = (event: string, data: any, msg: Message) => void;
export interface ChannelState {
    /** The shared subscription (null before the first render's effect ran). */
    subscription: Subscription | null;
    /** subscribing, subscribed or unsubscribed. */
    state: SubscriptionState | "idle";
    /** False after a reconnect whose missed messages could not be recovered: reload your data. */
    recovered: boolean;
    /** Publishes on the channel (the token's publish claim must allow it). */
    publish(event: string, data?: unknown): Promise<{
        id: string;
    }>;
}
/**
 * Subscribes to `channel` while the component is mounted and calls `handler`
 * for every message. The latest handler is always used, so it may close over
 * state without resubscribing.
 */
export declare function useChannel(channel: string, handler?: ChannelHandler): ChannelState;
/**
 * The members of a presence channel, kept current from join and leave events
 * (the namespace needs presence and join_leave on). One entry per connection.
 */
export declare function usePresence(channel: string): Member[];
