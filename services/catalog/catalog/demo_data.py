"""The demo catalog loaded by `manage.py seed`: six categories, fifty products, each with opening stock.

Product ids are derived from the SKU (uuid5), so every machine and every reseed gives a product the same
id: links, carts and stock rows built against the demo data stay valid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

DEMO_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://order-platform.example/catalog/products")


def demo_product_id(sku: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, sku.upper())


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    price: Decimal
    initial_stock: int
    description: str

    @property
    def id(self) -> uuid.UUID:
        return demo_product_id(self.sku)


CATEGORIES = (
    ("electronics", "Electronics"),
    ("home-kitchen", "Home & Kitchen"),
    ("books", "Books"),
    ("outdoor", "Outdoor & Sports"),
    ("clothing", "Clothing"),
    ("toys-games", "Toys & Games"),
)


def _p(sku, name, category, price, stock, description) -> DemoProduct:
    return DemoProduct(sku, name, category, Decimal(price), stock, description)


# Each entry: sku, name, category slug, price, initial stock, description.
# fmt: off
PRODUCTS = (
    # Electronics
    _p("ELEC-1001", "Wireless Noise-Cancelling Headphones", "electronics", "199.00", 60,
       "Over-ear Bluetooth headphones with active noise cancelling and 30-hour battery life."),
    _p("ELEC-1002", "Mechanical Keyboard, Brown Switches", "electronics", "89.90", 120,
       "Tenkeyless keyboard with tactile switches, PBT keycaps and a detachable USB-C cable."),
    _p("ELEC-1003", "27-inch 4K Monitor", "electronics", "329.00", 35,
       "IPS panel, 99% sRGB, height-adjustable stand and USB-C power delivery for laptops."),
    _p("ELEC-1004", "Portable Bluetooth Speaker", "electronics", "49.99", 150,
       "Waterproof speaker with 12 hours of playtime; pairs two units for stereo sound."),
    _p("ELEC-1005", "USB-C Charging Hub, 100 W", "electronics", "39.50", 200,
       "Four-port GaN charger that powers a laptop, tablet and two phones at once."),
    _p("ELEC-1006", "Wireless Ergonomic Mouse", "electronics", "34.99", 180,
       "Vertical mouse that keeps the wrist in a natural handshake position; silent clicks."),
    _p("ELEC-1007", "1080p Webcam with Microphone", "electronics", "59.00", 90,
       "Full HD video calls with automatic light correction and a privacy shutter."),
    _p("ELEC-1008", "E-Reader, 6-inch Glare-Free", "electronics", "119.00", 45,
       "Paper-like display with adjustable warm light; holds thousands of books."),
    _p("ELEC-1009", "Smart Plug, 2-Pack", "electronics", "24.99", 160,
       "Wi-Fi plugs with schedules and energy monitoring; work with voice assistants."),
    # Home & Kitchen
    _p("HOME-2001", "Cast Iron Skillet, 12-inch", "home-kitchen", "42.00", 80,
       "Pre-seasoned skillet that goes from stovetop to oven to campfire."),
    _p("HOME-2002", "Pour-Over Coffee Maker", "home-kitchen", "32.50", 110,
       "Borosilicate glass carafe with a reusable stainless steel filter; brews six cups."),
    _p("HOME-2003", "Chef's Knife, 8-inch", "home-kitchen", "74.00", 70,
       "Forged high-carbon stainless steel blade with a full tang and balanced handle."),
    _p("HOME-2004", "Bamboo Cutting Board Set", "home-kitchen", "29.99", 130,
       "Three boards with juice grooves; gentle on knife edges and easy to clean."),
    _p("HOME-2005", "Electric Kettle, 1.7 L", "home-kitchen", "45.00", 95,
       "Variable temperature settings for tea and coffee, keep-warm mode and auto shut-off."),
    _p("HOME-2006", "Linen Duvet Cover, Queen", "home-kitchen", "119.00", 40,
       "Stone-washed French linen that gets softer with every wash; coconut shell buttons."),
    _p("HOME-2007", "Ceramic Dinnerware Set, 12 Pieces", "home-kitchen", "89.00", 30,
       "Four each of dinner plates, side plates and bowls in a matte speckled glaze."),
    _p("HOME-2008", "Desk Lamp with Wireless Charger", "home-kitchen", "54.90", 75,
       "Dimmable LED lamp with five color temperatures and a Qi charging base."),
    _p("HOME-2009", "Vacuum-Insulated Water Bottle", "home-kitchen", "27.00", 200,
       "Keeps drinks cold for 24 hours or hot for 12; leak-proof lid, 750 ml."),
    # Books
    _p("BOOK-3001", "Designing Data-Intensive Applications", "books", "45.99", 60,
       "The big ideas behind reliable, scalable and maintainable systems: replication, partitioning, "
       "transactions and stream processing."),
    _p("BOOK-3002", "The Pragmatic Programmer", "books", "39.95", 70,
       "From journeyman to master: practical advice on software craftsmanship, 20th anniversary "
       "edition."),
    _p("BOOK-3003", "Building Microservices", "books", "49.99", 55,
       "Designing fine-grained systems: service boundaries, integration, deployment and "
       "observability."),
    _p("BOOK-3004", "Release It!", "books", "41.95", 40,
       "Design and deploy production-ready software: circuit breakers, bulkheads, timeouts and more."),
    _p("BOOK-3005", "The Art of French Cooking", "books", "35.00", 25,
       "Classic recipes and techniques for home cooks, from sauces to pastry."),
    _p("BOOK-3006", "A Field Guide to North American Birds", "books", "24.95", 50,
       "Illustrated guide to more than 900 species with range maps and identification tips."),
    _p("BOOK-3007", "Thinking in Systems", "books", "19.95", 65,
       "A primer on systems thinking: stocks, flows, feedback loops and leverage points."),
    _p("BOOK-3008", "The Hobbit, Illustrated Edition", "books", "28.00", 45,
       "Bilbo Baggins' unexpected journey, with full-color illustrations."),
    # Outdoor & Sports
    _p("OUTD-4001", "Two-Person Backpacking Tent", "outdoor", "249.00", 25,
       "Freestanding three-season tent, 1.6 kg, with two doors and two vestibules."),
    _p("OUTD-4002", "Down Sleeping Bag, -5 °C", "outdoor", "219.00", 30,
       "Packable 650-fill down mummy bag for cold nights on the trail."),
    _p("OUTD-4003", "Trekking Poles, Carbon", "outdoor", "89.00", 60,
       "Collapsible carbon poles with cork grips and quick flick-lock adjustment."),
    _p("OUTD-4004", "Yoga Mat, 6 mm", "outdoor", "38.00", 140,
       "Non-slip natural rubber mat with alignment lines; comes with a carrying strap."),
    _p("OUTD-4005", "Adjustable Dumbbells, Pair", "outdoor", "299.00", 20,
       "Dial-adjustable from 2 to 24 kg each; replaces fifteen pairs of weights."),
    _p("OUTD-4006", "Cycling Helmet with Rear Light", "outdoor", "79.00", 85,
       "Lightweight road helmet with MIPS protection and a rechargeable rear LED."),
    _p("OUTD-4007", "Headlamp, 400 Lumen", "outdoor", "29.95", 175,
       "Rechargeable headlamp with red night mode and a lockout switch for the backpack."),
    _p("OUTD-4008", "Insulated Camping Mug", "outdoor", "19.50", 190,
       "Stainless steel mug with a sliding lid; keeps coffee hot around the campfire."),
    # Clothing
    _p("CLTH-5001", "Merino Wool Base Layer Top", "clothing", "85.00", 90,
       "Soft, odor-resistant merino crew that regulates temperature on the move."),
    _p("CLTH-5002", "Waterproof Rain Jacket", "clothing", "149.00", 55,
       "Breathable three-layer shell with pit zips and an adjustable hood."),
    _p("CLTH-5003", "Organic Cotton T-Shirt", "clothing", "24.00", 200,
       "Heavyweight everyday tee in organic cotton, pre-shrunk, relaxed fit."),
    _p("CLTH-5004", "Selvedge Denim Jeans", "clothing", "128.00", 60,
       "Straight-leg raw denim woven on vintage shuttle looms; ages beautifully."),
    _p("CLTH-5005", "Trail Running Shoes", "clothing", "139.95", 70,
       "Grippy lugged outsole, rock plate and a cushioned midsole for long days on the trail."),
    _p("CLTH-5006", "Wool Beanie", "clothing", "22.00", 150,
       "Rib-knit beanie in soft lambswool; one size fits most."),
    _p("CLTH-5007", "Packable Down Vest", "clothing", "99.00", 65,
       "Warm, light vest that stuffs into its own pocket for travel."),
    _p("CLTH-5008", "Hiking Socks, 3-Pack", "clothing", "36.00", 180,
       "Cushioned merino blend socks with a seamless toe for blister-free miles."),
    # Toys & Games
    _p("TOYS-6001", "Strategy Board Game: Island Settlers", "toys-games", "44.99", 80,
       "Trade, build and settle a new island; for 3-4 players aged 10 and up."),
    _p("TOYS-6002", "1000-Piece Jigsaw Puzzle: Harbor at Dusk", "toys-games", "21.99", 120,
       "Thick, precision-cut pieces and a poster of the finished image."),
    _p("TOYS-6003", "Wooden Building Blocks, 100 Pieces", "toys-games", "39.00", 95,
       "Sustainably sourced beech blocks in classic shapes, finished with water-based paint."),
    _p("TOYS-6004", "Remote Control Off-Road Car", "toys-games", "64.50", 50,
       "1:16 scale four-wheel-drive buggy with a rechargeable battery and 2.4 GHz remote."),
    _p("TOYS-6005", "Cooperative Card Game: Deep Sea Rescue", "toys-games", "18.99", 140,
       "Work together to rescue the divers before the oxygen runs out; 2-5 players."),
    _p("TOYS-6006", "Kids' Science Kit: Crystal Growing", "toys-games", "27.50", 85,
       "Grow seven colorful crystals and learn the chemistry behind them."),
    _p("TOYS-6007", "Plush Red Panda, 30 cm", "toys-games", "19.00", 160,
       "Super-soft plush made from recycled fibers; surface washable."),
    _p("TOYS-6008", "Folding Chess Set, Walnut", "toys-games", "49.00", 40,
       "Hand-finished walnut board that folds into a felt-lined box for the pieces."),
)
# fmt: on
