import { describe, expect, it } from "vitest";
import { withErrorMapping, XmtpGroupNotFoundError, XmtpOperationError, XmtpUnavailableError, type XmtpSession } from "../../lib/xmtp/port.js";
import { bindingError } from "../support/fake-xmtp.js";

// Every implementation of the seam (the node-sdk adapter, the double) classifies errors through this wrapper.
describe("withErrorMapping", () => {
  const failing = (error: Error) =>
    withErrorMapping({
      inboxId: "inbox",
      installationId: "inst",
      findInboxId: () => Promise.reject(error),
    } as unknown as XmtpSession);

  it("keeps the identity fields and turns the binding's transport errors into XmtpUnavailableError", async () => {
    const session = failing(bindingError('api client error … has error status: \'The service is currently unavailable\', self: "tcp connect error"'));
    expect(session.inboxId).toBe("inbox");
    expect(session.installationId).toBe("inst");
    await expect(session.findInboxId("0x1")).rejects.toBeInstanceOf(XmtpUnavailableError);
  });

  it("turns other failures into XmtpOperationError and lets our own errors through", async () => {
    await expect(failing(bindingError("Group error: Missing identity update")).findInboxId("0x1")).rejects.toBeInstanceOf(XmtpOperationError);
    const notFound = new XmtpGroupNotFoundError("ab");
    await expect(failing(notFound).findInboxId("0x1")).rejects.toBe(notFound);
  });
});
