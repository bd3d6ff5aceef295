/* <lumi-feed>: the "Product feed" block (blocks/product-feed.liquid). Liquid renders the settings as data-*
   and skeleton cards of the final size; this fetches the feed once through the shop's app proxy as the block
   nears the viewport and swaps in the cards. No cookies, no storage, no other origin. */
(() => {
  if (customElements.get('lumi-feed')) return;
  const WIDTHS = [165, 360, 533, 720, 940, 1066];
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
  const sized = (url, w) => url + (url.includes('?') ? '&' : '?') + 'width=' + w;
  const designMode = () => !!(window.Shopify && Shopify.designMode);

  class LumiFeed extends HTMLElement {
    connectedCallback() {
      // An async script can run before the parser reaches the skeletons: start once the document is parsed.
      if (document.readyState !== 'loading') this.init();
      else document.addEventListener('DOMContentLoaded', () => this.init(), { once: true });
    }

    disconnectedCallback() {
      if (this.io) this.io.disconnect();
      if (this.ro) this.ro.disconnect();
      if (this.onEditor) ['block:select', 'section:load'].forEach((e) => document.removeEventListener('shopify:' + e, this.onEditor));
    }

    init() {
      if (this.started || !this.isConnected) return;
      this.track = this.querySelector('.lumi-feed__track');
      this.list = this.querySelector('.lumi-feed__list');
      if (designMode()) {
        // Theme editor: load at once when the block is selected or its section re-rendered.
        this.onEditor = (e) => (e.target.contains(this) || this.contains(e.target)) && this.load();
        ['block:select', 'section:load'].forEach((e) => document.addEventListener('shopify:' + e, this.onEditor));
      }
      // The first callback comes with the first rendered frame (styles applied): a block above the fold or
      // within 400 px of it loads then, one further down as the shopper scrolls towards it.
      if (!window.IntersectionObserver || !this.dataset.url) return this.load();
      this.io = new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && this.load(), { rootMargin: '0px 0px 400px 0px' });
      this.io.observe(this);
    }

    async load() {
      if (this.started) return;
      this.started = true;
      if (this.io) this.io.disconnect();
      if (!this.dataset.url) return this.fail('empty', 'pick a collection, product or search terms');
      try {
        const res = await fetch(this.dataset.url, { signal: AbortSignal.timeout && AbortSignal.timeout(10000) });
        const body = await res.json().catch(() => null);
        if (!res.ok) return this.fail(res.status === 404 ? 'empty' : 'error', (body && body.error && body.error.code) || 'HTTP ' + res.status);
        const products = (body && body.products) || [];
        if (!products.length) return this.fail('empty', 'no products');
        this.render(products);
      } catch (err) {
        this.fail('error', err.message);
      }
    }

    fail(state, why) {
      this.dataset.state = state;
      this.hidden = true;
      if (designMode()) console.warn('Lumi product feed (' + this.dataset.feed + ') hidden: ' + why);
    }

    render(products) {
      const d = this.dataset;
      // Only the first row of a block above the fold (on the page's first screen) loads its images eagerly.
      const fold = this.list.getBoundingClientRect().top + scrollY < innerHeight;
      const row = fold ? +(matchMedia('(min-width: 750px)').matches ? d.columns : d.columnsMobile) : 0;
      this.list.innerHTML = products.map((p, i) => this.card(p, this.id + '-' + i, i < row)).join('');
      this.track.removeAttribute('aria-busy');
      d.state = 'ready';
      if (this.querySelector('.lumi-feed__next')) this.scroller();
    }

    card(p, id, eager) {
      const d = this.dataset;
      const img = p.image;
      let media = '<span class="lumi-card__noimg"></span>';
      if (img && img.url) {
        const ws = WIDTHS.filter((w) => !img.width || w <= img.width);
        if (img.width < WIDTHS[5] && !ws.includes(img.width)) ws.push(img.width);
        media = '<img src="' + esc(sized(img.url, Math.min(533, img.width || 533))) + '" srcset="' +
          esc(ws.map((w) => sized(img.url, w) + ' ' + w + 'w').join(', ')) + '" sizes="' + esc(d.sizes) + '"' +
          (img.width && img.height ? ' width="' + img.width + '" height="' + img.height + '"' : '') +
          ' alt="' + esc(img.alt) + '"' + (eager ? '' : ' loading="lazy" decoding="async"') + '>';
      }
      const sale = p.price != null && p.compare_at_price != null && +p.compare_at_price > +p.price;
      const badge = (kind, text) => '<span class="lumi-card__badge lumi-card__badge--' + kind + '">' + esc(text) + '</span>';
      const badges = d.badges !== 'true' ? '' : (p.available === false ? badge('soldout', d.tSoldOut) : '') + (sale ? badge('sale', d.tSale) : '');
      // No price rather than a wrong one: the feed sends null where the market's price is unknown.
      let prices = '<span></span>';
      if (p.price_formatted != null) {
        prices = '<span class="lumi-card__price">' + (p.price_varies ? esc(d.tFrom) + ' ' : '') + esc(p.price_formatted) + '</span>';
        if (d.compare === 'true' && sale && p.compare_at_price_formatted != null) {
          prices += '<span class="lumi-visually-hidden">' + esc(d.tRegular) + '</span><s class="lumi-card__compare">' + esc(p.compare_at_price_formatted) + '</s>';
        }
      }
      return '<li class="lumi-feed__item"><article class="lumi-card" aria-labelledby="' + id + '"><div class="lumi-card__media">' + media +
        (badges && '<span class="lumi-card__badges">' + badges + '</span>') +
        '</div><div class="lumi-card__info">' +
        (d.vendor === 'true' ? '<p class="lumi-card__vendor"><span>' + esc(p.vendor) + '</span></p>' : '') +
        '<h3 class="lumi-card__title"><a class="lumi-card__link" id="' + id + '" href="' + esc(d.root + 'products/' + encodeURIComponent(p.handle)) +
        '">' + esc(p.title) + '</a></h3><p class="lumi-card__prices">' + prices + '</p></div></article></li>';
    }

    scroller() {
      const track = this.track;
      const [prev, next] = this.querySelectorAll('.lumi-feed__prev, .lumi-feed__next');
      const dir = () => (getComputedStyle(track).direction === 'rtl' ? -1 : 1);
      const card = () => this.list.firstElementChild.offsetWidth + (parseFloat(getComputedStyle(this.list).columnGap) || 0);
      // No scroll behavior given: the CSS decides (smooth only without prefers-reduced-motion).
      const go = (dx) => track.scrollBy({ left: dx });
      const update = () => {
        const x = Math.abs(track.scrollLeft);
        prev.setAttribute('aria-disabled', x < 2);
        next.setAttribute('aria-disabled', x > track.scrollWidth - track.clientWidth - 2);
      };
      // aria-disabled rather than disabled: a button that reaches the end keeps the focus.
      prev.disabled = next.disabled = false;
      prev.addEventListener('click', () => go(-dir() * track.clientWidth));
      next.addEventListener('click', () => go(dir() * track.clientWidth));
      track.addEventListener('keydown', (e) => {
        const step = { ArrowLeft: -1, ArrowRight: 1 }[e.key];
        if (step) go(step * card());
        else if (e.key === 'Home' || e.key === 'End') track.scrollTo({ left: e.key === 'Home' ? 0 : dir() * track.scrollWidth });
        else return;
        e.preventDefault();
      });
      track.addEventListener('scroll', update, { passive: true });
      if (window.ResizeObserver) (this.ro = new ResizeObserver(update)).observe(track);
      update();
    }
  }

  customElements.define('lumi-feed', LumiFeed);
})();
