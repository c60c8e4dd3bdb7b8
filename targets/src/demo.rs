//! The demo sales database: a small SQLite file with realistic, deterministic data for first questions and charts
//! ("revenue by month", "top categories per region", "best sales reps").
//!
//! Two years of orders up to [`ANCHOR_DATE`] with growth, year-end peaks, regional and category mixes, discounts,
//! cancellations and returns. The same seed always gives the same rows, whatever the day it is built.

use crate::error::TargetError;
use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use std::path::Path;

/// Last day with orders; the data covers the two years before it.
pub const ANCHOR_DATE: (i32, u32, u32) = (2026, 10, 31);

const SEED: u64 = 0x5EED_2026_0DE0_0001;
const DAYS: i64 = 730;

/// Creates the demo database at `path` unless a file is already there. The file is built under a temporary name
/// in the same directory and renamed into place, so a crash never leaves a half-written database behind and
/// concurrent callers at worst build it twice.
pub async fn ensure_demo_database(path: &Path) -> Result<(), TargetError> {
    let io = |what: &str, e: std::io::Error| TargetError::Demo(format!("{what} {}: {e}", path.display()));
    if tokio::fs::try_exists(path).await.map_err(|e| io("cannot check", e))? {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir).await.map_err(|e| io("cannot create the directory of", e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "demo.db".into());
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let built = async {
        build(&temp).await?;
        tokio::fs::rename(&temp, path).await.map_err(|e| io("cannot move the new database to", e))
    }
    .await;
    if built.is_err() {
        // Best effort: the temporary name is unique, a leftover would only waste space.
        let _ = tokio::fs::remove_file(&temp).await;
    }
    built
}

async fn build(path: &Path) -> Result<(), TargetError> {
    let fail = |e: sqlx::Error| TargetError::Demo(e.to_string());
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.map_err(fail)?;
    let data = Dataset::generate();
    let mut tx = conn.begin().await.map_err(fail)?;
    (&mut tx).execute(SCHEMA).await.map_err(fail)?;
    data.insert(&mut tx).await.map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    // Row-count statistics for the schema listing (`sqlite_stat1`).
    conn.execute("ANALYZE").await.map_err(fail)?;
    conn.close().await.map_err(fail)
}

const SCHEMA: &str = "
CREATE TABLE regions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    unit_price REAL NOT NULL,
    unit_cost REAL NOT NULL,
    launched_on DATE NOT NULL,
    is_active INTEGER NOT NULL
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(id),
    manager_id INTEGER REFERENCES employees(id),
    hire_date DATE NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    segment TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(id),
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    signup_date DATE NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    employee_id INTEGER REFERENCES employees(id),
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    shipping_fee REAL NOT NULL,
    total_amount REAL NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    discount REAL NOT NULL DEFAULT 0
);
CREATE INDEX orders_date ON orders(order_date);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX order_items_order ON order_items(order_id);
CREATE INDEX order_items_product ON order_items(product_id);
CREATE INDEX customers_region ON customers(region_id);
CREATE INDEX products_category ON products(category_id);
";

/// Region name, share of customers, (country, city) list.
type Region = (&'static str, f64, &'static [(&'static str, &'static str)]);

const REGIONS: [Region; 5] = [
    (
        "North America",
        34.0,
        &[
            ("United States", "New York"),
            ("United States", "San Francisco"),
            ("United States", "Chicago"),
            ("United States", "Austin"),
            ("Canada", "Toronto"),
            ("Canada", "Vancouver"),
        ],
    ),
    (
        "Europe",
        26.0,
        &[
            ("United Kingdom", "London"),
            ("Germany", "Berlin"),
            ("Germany", "Munich"),
            ("France", "Paris"),
            ("Spain", "Madrid"),
            ("Netherlands", "Amsterdam"),
        ],
    ),
    (
        "Asia Pacific",
        25.0,
        &[
            ("China", "Shanghai"),
            ("China", "Shenzhen"),
            ("Japan", "Tokyo"),
            ("Singapore", "Singapore"),
            ("Australia", "Sydney"),
            ("India", "Bangalore"),
        ],
    ),
    (
        "Latin America",
        9.0,
        &[("Brazil", "São Paulo"), ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago")],
    ),
    (
        "Middle East & Africa",
        6.0,
        &[("United Arab Emirates", "Dubai"), ("South Africa", "Johannesburg"), ("Egypt", "Cairo")],
    ),
];

/// Category, description, share of order lines, price range, product nouns, peak months.
struct CategorySpec {
    name: &'static str,
    description: &'static str,
    share: f64,
    price: (f64, f64),
    nouns: &'static [&'static str],
    peak_months: &'static [u32],
}

const CATEGORIES: [CategorySpec; 8] = [
    CategorySpec {
        name: "Electronics",
        description: "Audio, wearables, cameras and accessories",
        share: 22.0,
        price: (25.0, 900.0),
        nouns: &["Headphones", "Speaker", "Smartwatch", "Earbuds", "Camera", "Tablet", "Charger"],
        peak_months: &[11, 12],
    },
    CategorySpec {
        name: "Computers",
        description: "Laptops, monitors and peripherals",
        share: 15.0,
        price: (20.0, 2200.0),
        nouns: &["Laptop", "Monitor", "Keyboard", "Mouse", "Docking Station", "SSD"],
        peak_months: &[8, 9],
    },
    CategorySpec {
        name: "Home & Kitchen",
        description: "Appliances, cookware and cleaning",
        share: 18.0,
        price: (15.0, 450.0),
        nouns: &["Blender", "Coffee Maker", "Air Fryer", "Knife Set", "Cookware Set", "Vacuum"],
        peak_months: &[11, 12],
    },
    CategorySpec {
        name: "Sports & Outdoors",
        description: "Fitness, camping and cycling gear",
        share: 12.0,
        price: (12.0, 600.0),
        nouns: &["Yoga Mat", "Tent", "Running Shoes", "Bike Helmet", "Dumbbells", "Backpack"],
        peak_months: &[4, 5, 6, 7],
    },
    CategorySpec {
        name: "Clothing",
        description: "Outerwear, casual wear and shoes",
        share: 14.0,
        price: (12.0, 220.0),
        nouns: &["Jacket", "Jeans", "T-Shirt", "Sneakers", "Hoodie", "Dress"],
        peak_months: &[9, 10, 11],
    },
    CategorySpec {
        name: "Books",
        description: "Fiction, non-fiction and textbooks",
        share: 8.0,
        price: (8.0, 70.0),
        nouns: &["Novel", "Cookbook", "Biography", "Travel Guide", "Textbook"],
        peak_months: &[1, 8, 12],
    },
    CategorySpec {
        name: "Beauty",
        description: "Skin care, fragrance and hair care",
        share: 7.0,
        price: (6.0, 140.0),
        nouns: &["Moisturizer", "Perfume", "Lipstick", "Shampoo", "Serum"],
        peak_months: &[2, 5, 12],
    },
    CategorySpec {
        name: "Toys",
        description: "Games, puzzles and building sets",
        share: 4.0,
        price: (8.0, 160.0),
        nouns: &["Building Blocks", "Puzzle", "Board Game", "Plush Toy", "RC Car"],
        peak_months: &[11, 12],
    },
];

const BRANDS: [&str; 10] =
    ["Aurora", "Nimbus", "Vertex", "Zenith", "Pulse", "Nova", "Summit", "Echo", "Atlas", "Lumen"];
const MODELS: [&str; 5] = ["", " Pro", " Mini", " Plus", " X"];

const FIRST_NAMES: [&str; 40] = [
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Lucas", "Mia", "Mateo", "Chloe", "Leo", "Hannah",
    "Omar", "Yuki", "Wei", "Priya", "Arjun", "Fatima", "Diego", "Sofia", "Lars", "Ingrid", "Pierre", "Camille", "Hiro",
    "Mei", "Jin", "Amara", "Kwame", "Elena", "Marco", "Isabel", "Tom", "Grace", "Ravi", "Aisha", "Felix", "Nora",
    "Daniel",
];

const LAST_NAMES: [&str; 40] = [
    "Smith",
    "Johnson",
    "Garcia",
    "Martinez",
    "Brown",
    "Müller",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Silva",
    "Santos",
    "Kim",
    "Lee",
    "Park",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Tanaka",
    "Sato",
    "Suzuki",
    "Patel",
    "Sharma",
    "Khan",
    "Ali",
    "Haddad",
    "Okafor",
    "Mensah",
    "Novak",
    "Kowalski",
    "Jensen",
    "Larsen",
    "Andersson",
    "O'Brien",
    "Murphy",
    "Walker",
    "Young",
    "Lopez",
    "Nguyen",
    "Cohen",
];

const COMPANY_SUFFIXES: [&str; 8] =
    ["Logistics", "Consulting", "Studio", "Labs", "Trading", "Partners", "Holdings", "Supply Co."];

struct Product {
    category: usize,
    sku: String,
    name: String,
    price: f64,
    cost: f64,
    launched_on: NaiveDate,
    active: bool,
}

struct Employee {
    name: String,
    title: &'static str,
    region: usize,
    manager: Option<usize>,
    hired: NaiveDate,
}

struct Customer {
    name: String,
    email: String,
    segment: &'static str,
    region: usize,
    country: &'static str,
    city: &'static str,
    signup: NaiveDate,
}

struct Order {
    customer: usize,
    employee: Option<usize>,
    date: NaiveDate,
    status: &'static str,
    channel: &'static str,
    shipping: f64,
    total: f64,
}

struct Item {
    order: usize,
    product: usize,
    quantity: i64,
    unit_price: f64,
    discount: f64,
}

struct Dataset {
    products: Vec<Product>,
    employees: Vec<Employee>,
    customers: Vec<Customer>,
    orders: Vec<Order>,
    items: Vec<Item>,
}

fn anchor() -> NaiveDate {
    let (y, m, d) = ANCHOR_DATE;
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Dataset {
    fn generate() -> Self {
        let mut rng = Rng(SEED);
        let end = anchor();
        let start = end - TimeDelta::days(DAYS - 1);

        let mut products = Vec::new();
        for (c, spec) in CATEGORIES.iter().enumerate() {
            let mut names = std::collections::HashSet::new();
            while names.len() < 15 {
                let noun = spec.nouns[rng.below(spec.nouns.len())];
                let name = format!("{} {noun}{}", BRANDS[rng.below(BRANDS.len())], MODELS[rng.below(MODELS.len())]);
                if !names.insert(name.clone()) {
                    continue;
                }
                // Prices spread evenly on a log scale, ending in .99.
                let (lo, hi) = spec.price;
                let price = (lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp().round().max(2.0) - 0.01;
                products.push(Product {
                    category: c,
                    sku: format!("{}-{:04}", spec.name[..3].to_uppercase(), products.len() + 1),
                    name,
                    price,
                    cost: cents(price * rng.range(0.45, 0.75)),
                    launched_on: start - TimeDelta::days(400) + TimeDelta::days(rng.below(900) as i64),
                    active: rng.chance(0.9),
                });
            }
        }

        // A VP, one manager per region, then reps spread like the customers.
        let person = |rng: &mut Rng| {
            format!("{} {}", FIRST_NAMES[rng.below(FIRST_NAMES.len())], LAST_NAMES[rng.below(LAST_NAMES.len())])
        };
        let region_weights: Vec<f64> = REGIONS.iter().map(|r| r.1).collect();
        let mut employees = vec![Employee {
            name: person(&mut rng),
            title: "VP of Sales",
            region: 0,
            manager: None,
            hired: NaiveDate::from_ymd_opt(2019, 3, 4).unwrap_or_default(),
        }];
        for region in 0..REGIONS.len() {
            employees.push(Employee {
                name: person(&mut rng),
                title: "Regional Sales Manager",
                region,
                manager: Some(0),
                hired: start - TimeDelta::days(300 + rng.below(1200) as i64),
            });
        }
        for _ in 0..24 {
            let region = rng.weighted(&region_weights);
            employees.push(Employee {
                name: person(&mut rng),
                title: if rng.chance(0.4) { "Account Executive" } else { "Sales Representative" },
                region,
                manager: Some(1 + region),
                hired: start - TimeDelta::days(200) + TimeDelta::days(rng.below(600) as i64),
            });
        }

        let mut customers = Vec::new();
        for i in 0..900 {
            let region = rng.weighted(&region_weights);
            let places = REGIONS[region].2;
            let (country, city) = places[rng.below(places.len())];
            let segment = ["Consumer", "Small Business", "Corporate"][rng.weighted(&[60.0, 28.0, 12.0])];
            let first = FIRST_NAMES[rng.below(FIRST_NAMES.len())];
            let last = LAST_NAMES[rng.below(LAST_NAMES.len())];
            let (name, email) = if segment == "Consumer" {
                let email = format!("{}.{}{}@example.com", slug(first), slug(last), i + 1);
                (format!("{first} {last}"), email)
            } else {
                let company = format!("{last} {}", COMPANY_SUFFIXES[rng.below(COMPANY_SUFFIXES.len())]);
                let email = format!("orders{}@{}.example.com", i + 1, slug(&company));
                (company, email)
            };
            // Sign-ups accelerate: half the base joins in the last two years.
            let signup = start - TimeDelta::days(700) + TimeDelta::days((rng.unit().sqrt() * 1380.0) as i64);
            customers.push(Customer { name, email, segment, region, country, city, signup });
        }
        customers.sort_by_key(|c| c.signup);

        let mut orders = Vec::new();
        let mut items = Vec::new();
        let category_weights = |month: u32| -> Vec<f64> {
            CATEGORIES.iter().map(|c| c.share * if c.peak_months.contains(&month) { 1.8 } else { 1.0 }).collect()
        };
        for day in 0..DAYS {
            let date = start + TimeDelta::days(day);
            let month = date.month();
            let season = [0.85, 0.8, 0.95, 0.95, 1.0, 1.0, 0.95, 1.0, 1.05, 1.1, 1.45, 1.6][month as usize - 1];
            let growth = 0.7 + 0.6 * day as f64 / DAYS as f64;
            let weekend = if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) { 1.15 } else { 1.0 };
            let expected = 5.6 * season * growth * weekend;
            let count = expected.floor() as usize + usize::from(rng.chance(expected.fract()));
            // Only customers who had signed up by then can order.
            let known = customers.partition_point(|c| c.signup <= date).max(1);
            let weights = category_weights(month);
            for _ in 0..count {
                let customer = rng.below(known);
                let c = &customers[customer];
                let channel = ["online", "store", "phone"][rng.weighted(&[55.0, 25.0, 20.0])];
                let employee = (channel != "online").then(|| {
                    let local: Vec<usize> = (6..employees.len()).filter(|e| employees[*e].region == c.region).collect();
                    if local.is_empty() { 1 + c.region } else { local[rng.below(local.len())] }
                });
                let age = (end - date).num_days();
                let status = if age < 3 {
                    "processing"
                } else if age < 10 {
                    if rng.chance(0.7) { "shipped" } else { "delivered" }
                } else {
                    ["delivered", "cancelled", "returned"][rng.weighted(&[89.0, 6.0, 5.0])]
                };
                let promo = month == 11 && date.day() >= 20;
                let lines = 1 + rng.weighted(&[40.0, 28.0, 17.0, 10.0, 5.0]);
                let order = orders.len();
                let mut subtotal = 0.0;
                let mut used = Vec::new();
                for _ in 0..lines {
                    let category = rng.weighted(&weights);
                    let pool: Vec<usize> = (0..products.len())
                        .filter(|p| products[*p].category == category && !used.contains(p))
                        .collect();
                    let Some(&product) = pool.get(rng.below(pool.len().max(1))) else { continue };
                    used.push(product);
                    let quantity = match c.segment {
                        "Corporate" => 1 + rng.below(8) as i64,
                        "Small Business" => 1 + rng.below(3) as i64,
                        _ => 1 + i64::from(rng.chance(0.15)),
                    };
                    // Prices went up 3% at the start of 2026.
                    let list = products[product].price;
                    let unit_price = if date.year() < 2026 { cents(list / 1.03) } else { list };
                    let discount = if rng.chance(if promo { 0.7 } else { 0.22 }) {
                        [0.05, 0.1, 0.15, 0.2, 0.25][rng.below(if promo { 5 } else { 3 })]
                    } else {
                        0.0
                    };
                    subtotal += quantity as f64 * unit_price * (1.0 - discount);
                    items.push(Item { order, product, quantity, unit_price, discount });
                }
                let shipping = match channel {
                    "store" => 0.0,
                    _ if subtotal >= 100.0 => 0.0,
                    _ => [4.99, 7.99][rng.below(2)],
                };
                orders.push(Order {
                    customer,
                    employee,
                    date,
                    status,
                    channel,
                    shipping,
                    total: cents(subtotal + shipping),
                });
            }
        }
        Dataset { products, employees, customers, orders, items }
    }

    async fn insert(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        for (i, r) in REGIONS.iter().enumerate() {
            sqlx::query("INSERT INTO regions VALUES ($1, $2)").bind(i as i64 + 1).bind(r.0).execute(&mut *conn).await?;
        }
        for (i, c) in CATEGORIES.iter().enumerate() {
            let q = sqlx::query("INSERT INTO categories VALUES ($1, $2, $3)");
            q.bind(i as i64 + 1).bind(c.name).bind(c.description).execute(&mut *conn).await?;
        }
        for (i, p) in self.products.iter().enumerate() {
            let q = sqlx::query("INSERT INTO products VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(i as i64 + 1)
                .bind(&p.sku)
                .bind(&p.name)
                .bind(p.category as i64 + 1)
                .bind(p.price)
                .bind(p.cost)
                .bind(p.launched_on.to_string())
                .bind(p.active);
            q.execute(&mut *conn).await?;
        }
        for (i, e) in self.employees.iter().enumerate() {
            let q = sqlx::query("INSERT INTO employees VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(i as i64 + 1)
                .bind(&e.name)
                .bind(e.title)
                .bind(e.region as i64 + 1)
                .bind(e.manager.map(|m| m as i64 + 1))
                .bind(e.hired.to_string());
            q.execute(&mut *conn).await?;
        }
        for (i, c) in self.customers.iter().enumerate() {
            let q = sqlx::query("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(i as i64 + 1)
                .bind(&c.name)
                .bind(&c.email)
                .bind(c.segment)
                .bind(c.region as i64 + 1)
                .bind(c.country)
                .bind(c.city)
                .bind(c.signup.to_string());
            q.execute(&mut *conn).await?;
        }
        for (i, o) in self.orders.iter().enumerate() {
            let q = sqlx::query("INSERT INTO orders VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(i as i64 + 1)
                .bind(o.customer as i64 + 1)
                .bind(o.employee.map(|e| e as i64 + 1))
                .bind(o.date.to_string())
                .bind(o.status)
                .bind(o.channel)
                .bind(o.shipping)
                .bind(o.total);
            q.execute(&mut *conn).await?;
        }
        for (i, it) in self.items.iter().enumerate() {
            let q = sqlx::query("INSERT INTO order_items VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(i as i64 + 1)
                .bind(it.order as i64 + 1)
                .bind(it.product as i64 + 1)
                .bind(it.quantity)
                .bind(it.unit_price)
                .bind(it.discount);
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// `O'Brien` -> `obrien`, `Müller Labs` -> `mullerlabs` (ASCII letters and digits only).
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ü' => 'u',
            'ã' | 'á' => 'a',
            'é' => 'e',
            other => other,
        })
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// SplitMix64: tiny, fast and fully determined by the seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    /// Uniform in 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Index drawn with probability proportional to its weight.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let mut x = self.unit() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized() {
        let a = Dataset::generate();
        let b = Dataset::generate();
        assert_eq!(a.orders.len(), b.orders.len());
        assert_eq!(a.items.len(), b.items.len());
        assert_eq!(a.orders.last().map(|o| o.total), b.orders.last().map(|o| o.total));
        assert!((3000..7000).contains(&a.orders.len()), "{} orders", a.orders.len());
        assert!(a.items.len() > a.orders.len() * 3 / 2);
        assert_eq!(a.products.len(), 8 * 15);
        // Every order belongs to a customer who had signed up by then.
        assert!(a.orders.iter().all(|o| a.customers[o.customer].signup <= o.date));
        assert_eq!(a.orders.last().map(|o| o.date), Some(anchor()));
    }

    #[test]
    fn slugs_are_plain_ascii() {
        assert_eq!(slug("O'Brien"), "obrien");
        assert_eq!(slug("Müller Supply Co."), "mullersupplyco");
    }
}
