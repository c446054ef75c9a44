"use strict";
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/react.ts
var react_exports = {};
__export(react_exports, {
  EddyProvider: () => EddyProvider,
  useChannel: () => useChannel,
  useEddy: () => useEddy,
  usePresence: () => usePresence
});
module.exports = __toCommonJS(react_exports);
var import_react = require("react");
var EddyContext = (0, import_react.createContext)(null);
function EddyProvider({ client, children }) {
  return (0, import_react.createElement)(EddyContext.Provider, { value: client }, children);
}
function useEddy() {
  const client = (0, import_react.useContext)(EddyContext);
  if (!client) throw new Error("eddy-client/react: useEddy, useChannel and usePresence need an <EddyProvider client={...}> above them");
  return client;
}
var users = /* @__PURE__ */ new WeakMap();
function acquire(client, channel) {
  let counts = users.get(client);
  if (!counts) users.set(client, counts = /* @__PURE__ */ new Map());
  counts.set(channel, (counts.get(channel) ?? 0) + 1);
  return client.subscribe(channel);
}
function release(client, channel, sub) {
  const counts = users.get(client);
  const n = (counts?.get(channel) ?? 1) - 1;
  if (n > 0) {
    counts.set(channel, n);
    return;
  }
  counts?.delete(channel);
  void sub.unsubscribe().catch(() => {
  });
}
function useChannel(channel, handler) {
  const client = useEddy();
  const handlerRef = (0, import_react.useRef)(handler);
  handlerRef.current = handler;
  const [sub, setSub] = (0, import_react.useState)(null);
  const [state, setState] = (0, import_react.useState)("idle");
  const [recovered, setRecovered] = (0, import_react.useState)(true);
  (0, import_react.useEffect)(() => {
    const s = acquire(client, channel);
    setSub(s);
    setState(s.state);
    const offs = [
      s.on("*", (event, data, msg) => handlerRef.current?.(event, data, msg)),
      s.on("subscribed", (ev) => {
        setState("subscribed");
        setRecovered(!ev.resubscribed || ev.recovered);
      }),
      s.on("unsubscribed", () => setState("unsubscribed"))
    ];
    return () => {
      for (const off of offs) off();
      release(client, channel, s);
    };
  }, [client, channel]);
  return {
    subscription: sub,
    state,
    recovered,
    publish: (event, data) => client.publish(channel, event, data)
  };
}
function usePresence(channel) {
  const client = useEddy();
  const [members, setMembers] = (0, import_react.useState)([]);
  (0, import_react.useEffect)(() => {
    const s = acquire(client, channel);
    let live = true;
    let pending = null;
    const apply = (list, action, m) => {
      const rest = list.filter((x) => x.conn !== m.conn);
      return action === "join" ? [...rest, m] : rest;
    };
    const load = () => {
      pending = [];
      s.presence().then(
        (all) => {
          if (!live) return;
          let list = all;
          for (const ev of pending ?? []) list = apply(list, ev.action, ev.member);
          pending = null;
          setMembers(list);
        },
        () => {
          pending = null;
        }
      );
    };
    const offs = [
      s.on("subscribed", load),
      s.on("presence", (ev) => {
        if (pending) pending.push(ev);
        else setMembers((list) => apply(list, ev.action, ev.member));
      })
    ];
    if (s.state === "subscribed") load();
    return () => {
      live = false;
      for (const off of offs) off();
      release(client, channel, s);
    };
  }, [client, channel]);
  return members;
}
