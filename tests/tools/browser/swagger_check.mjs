// Drives Debian's chromium through the Swagger UI of a store started with
// -dev (tests/integration/test_swagger.py): lists the operations the page
// shows, then "Try it out" on POST /api/query with the given body, "Execute",
// and reports the status and body the page got. Prints one JSON object.
//   node swagger_check.mjs <base url> <query body JSON> <screenshot.png>
import puppeteer from "puppeteer-core";

const [base, body, shot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.setViewport({ width: 1280, height: 1800 });
  await page.goto(base + "/swagger/", { waitUntil: "networkidle0" });
  await page.waitForSelector(".opblock");
  const operations = await page.$$eval(".opblock", (els) =>
    els.map((e) =>
      e.querySelector(".opblock-summary-method").textContent.trim() + " " +
      e.querySelector(".opblock-summary-path").getAttribute("data-path")));

  const op = "#operations-query-queryPost";
  await page.click(`${op} .opblock-summary-control`);
  await page.waitForSelector(`${op} .try-out__btn`);
  await page.click(`${op} .try-out__btn`);
  const area = `${op} textarea.body-param__text`;
  await page.waitForSelector(area);
  await page.click(area, { clickCount: 3 });
  await page.keyboard.down("Control");
  await page.keyboard.press("KeyA");
  await page.keyboard.up("Control");
  await page.keyboard.press("Backspace");
  await page.type(area, body);
  await page.click(`${op} .execute`);
  const status = `${op} .live-responses-table .response .response-col_status`;
  await page.waitForSelector(status);
  const code = await page.$eval(status, (e) => e.textContent.trim());
  const answer = await page.$eval(`${op} .live-responses-table .response-col_description pre`,
                                  (e) => e.textContent);
  await page.screenshot({ path: shot, fullPage: false });
  console.log(JSON.stringify({ operations, status: code, body: answer }));
} finally {
  await browser.close();
}
