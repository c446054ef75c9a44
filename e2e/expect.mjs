// expect waits until predicate(element, arg) is true in the page for the
// element matching selector, or fails naming what it waited for and
// showing the page's state.
export async function expect(page, selector, predicate, what, arg, timeout = 10_000) {
  try {
    await page.waitForFunction(
      ([sel, src, a]) => {
        const el = document.querySelector(sel);
        // eslint-disable-next-line no-new-func
        return !!el && new Function("return " + src)()(el, a);
      },
      [selector, predicate.toString(), arg],
      { timeout, polling: 50 },
    );
  } catch (err) {
    const state = await page
      .evaluate(() => ({
        status: document.querySelector("#status, #live")?.textContent,
        banner: document.querySelector("#banner")?.textContent?.trim(),
        messages: [...document.querySelectorAll("#messages li, #posts li")].map((li) => li.textContent.trim()),
      }))
      .catch(() => ({}));
    throw new Error(`timed out waiting for: ${what}\npage state: ${JSON.stringify(state)}\n${err.message.split("\n")[0]}`);
  }
}
